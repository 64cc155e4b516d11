"""pycocotools' 12 stats for the official Atto results on ../shared/coco with some boxes inverted.

The DEIMv2 exports can return a box with x2 < x1 (see src/postprocess/detections.ts): written as
COCO xywh it has a negative width. pycocotools' loadRes accepts such boxes (area w*h, IoU 0 with
every ground truth), so `deimv2 eval` must score them too. The inversion rule is in
invertedResults() of test/output-safety.test.ts and here: every 7th result gets a negative width,
every 11th a negative height (both for multiples of 77).

Run with pycocotools installed (outside the repository):
  PYTHONPATH=/path/to/pycocotools /usr/bin/python3 scripts/make-inverted-box-fixture.py > test/fixtures/eval/inverted-boxes.json
"""
import contextlib, io, json, os, sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

shared = os.path.join(os.path.dirname(__file__), '..', '..', 'shared')
gt_file = os.path.join(shared, 'coco', 'annotations', 'instances_val2017.json')
results = json.load(open(os.path.join(shared, 'reference', 'atto_coco50_official.json')))
for i, r in enumerate(results):
    x, y, w, h = r['bbox']
    if i % 7 == 0:
        r['bbox'] = [x + w, y, -w, h]
        x, w = x + w, -w
    if i % 11 == 0:
        r['bbox'] = [x, y + h, w, -h]
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(gt_file)
    dt = gt.loadRes(results)
    ev = COCOeval(gt, dt, 'bbox')
    ev.evaluate(); ev.accumulate(); ev.summarize()
json.dump({'note': __doc__.strip().splitlines()[0], 'inverted': sum(1 for r in results if r['bbox'][2] < 0 or r['bbox'][3] < 0), 'stats': [float(v) for v in ev.stats]}, sys.stdout)
print()
