# Run in a scratch folder holding pycocotools/ from cocodataset/cocoapi (PythonAPI/pycocotools: coco.py,
# cocoeval.py with np.float -> float, matplotlib imports removed) and a mask.py whose iou() is maskApi bbIou in numpy.
# python3 make-duplicate-id-fixture.py instances_val2017.json atto_coco50_official.json gt-dup.json stats.json
# Scores a results file with pycocotools (source of cocodataset/cocoapi, mask IoU stood in by numpy)
# on annotations where every 7th annotation takes the id of the one before (duplicate ids).
import json, sys, contextlib, io
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt_file, res_file, out_gt, out_stats = sys.argv[1:5]
d = json.load(open(gt_file))
for k in range(7, len(d['annotations']), 7):
    d['annotations'][k]['id'] = d['annotations'][k - 1]['id']
json.dump(d, open(out_gt, 'w'))
with contextlib.redirect_stdout(io.StringIO()):
    gt = COCO(out_gt); dt = gt.loadRes(res_file)
    e = COCOeval(gt, dt, 'bbox'); e.evaluate(); e.accumulate(); e.summarize()
json.dump([float(x) for x in e.stats], open(out_stats, 'w'))
print(e.stats)
