/**
 * COCO evaluation against pycocotools: its published figures on ../shared, its stats on random
 * adversarial sets (fixture), and hand-computed cases for each branch of its matching and
 * accumulation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseGroundTruth, parseResults, readGroundTruth, readResults } from '../dist/eval/coco-dataset.js';
import { defaultParams, evaluateCoco, linspace, pairwiseSum, perCategoryAp } from '../dist/eval/cocoeval.js';
import { formatFixed3, formatSummary } from '../dist/eval/summary-format.js';

const SHARED = new URL('../../shared/', import.meta.url).pathname;
const ANNOTATIONS = `${SHARED}coco/annotations/instances_val2017.json`;
const haveShared = existsSync(ANNOTATIONS);

/** The ../shared/README.md table: pycocotools 2.0.11 on the official reference detections. */
const README_TABLE: Record<string, string> = {
  atto: '0.290 0.454 0.304 0.071 0.400 0.490 0.269 0.410 0.428 0.093 0.545 0.765',
  femto: '0.381 0.523 0.407 0.116 0.515 0.626 0.348 0.486 0.519 0.194 0.641 0.846',
};

describe.skipIf(!haveShared)('the reference detections on ../shared/coco', () => {
  for (const model of ['atto', 'femto']) {
    it(`${model}: the 12 figures of pycocotools, at every printed digit`, async () => {
      const gt = await readGroundTruth(ANNOTATIONS);
      const dt = await readResults(`${SHARED}reference/${model}_coco50_official.json`, gt);
      const { lines, stats } = evaluateCoco(gt, dt);
      expect(stats.map(formatFixed3).join(' ')).toBe(README_TABLE[model]);
      expect(formatSummary(lines).split('\n')[0]).toBe(
        ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ${README_TABLE[model].slice(0, 5)}`,
      );
    });
  }
});

describe('random adversarial sets scored by pycocotools (fixture)', () => {
  const golden = JSON.parse(readFileSync(new URL('./fixtures/eval/pycocotools-golden.json', import.meta.url), 'utf8'));
  golden.cases.forEach((c: { gt: unknown; dt: unknown; stats: number[]; text: string }, i: number) => {
    it(`case ${i}: the same 12 doubles and the same printed text`, () => {
      const gt = parseGroundTruth(c.gt, 'gt');
      const { lines, stats } = evaluateCoco(gt, parseResults(c.dt, gt, 'dt'));
      expect(stats).toEqual(c.stats);
      expect(formatSummary(lines)).toBe(c.text);
    });
  });
});

// ---- hand-computed cases ----------------------------------------------------------------

interface Box { image: number; cat?: number; box: number[]; area?: number; crowd?: boolean; id?: number }

function dataset(images: number[], gts: Box[], cats = [1, 2]) {
  return parseGroundTruth({
    images: images.map((id) => ({ id, file_name: `${id}.jpg`, width: 640, height: 480 })),
    categories: cats.map((id) => ({ id, name: `cat${id}` })),
    annotations: gts.map((g, i) => ({
      id: g.id ?? i + 1, image_id: g.image, category_id: g.cat ?? 1, bbox: g.box,
      area: g.area ?? g.box[2] * g.box[3], iscrowd: g.crowd ? 1 : 0,
    })),
  }, 'gt.json');
}

function score(gt: ReturnType<typeof dataset>, dets: (Box & { score: number })[]) {
  const dt = parseResults(dets.map((d) => ({ image_id: d.image, category_id: d.cat ?? 1, bbox: d.box, score: d.score })), gt, 'dt.json');
  const result = evaluateCoco(gt, dt);
  // Precision is tp / (tp + fp + eps) as in pycocotools, so a perfect 1 is 0.9999999999999998:
  // the hand-computed figures are compared to 12 decimals.
  const [ap, ap50, ap75, aps, apm, apl, ar1, ar10, ar100, ars, arm, arl] = result.stats.map((v) => Number(v.toFixed(12)));
  return { ap, ap50, ap75, aps, apm, apl, ar1, ar10, ar100, ars, arm, arl, result };
}

const LARGE = [10, 10, 200, 100]; // area 20000: large
const SMALL = [300, 300, 20, 20]; // area 400: small

describe('hand-computed cases', () => {
  it('the thresholds are numpy linspace doubles, and 0.75 is one of them', () => {
    const p = defaultParams();
    expect(p.recallThresholds.length).toBe(101);
    expect(p.recallThresholds[100]).toBe(1);
    expect(p.recallThresholds[7]).toBe(7 * 0.01); // not 0.07: numpy computes i*step + start
    expect(p.iouThresholds[5]).toBe(0.75);
    expect([...linspace(0.5, 0.95, 10)].map((v) => v.toFixed(2)).join(' ')).toBe('0.50 0.55 0.60 0.65 0.70 0.75 0.80 0.85 0.90 0.95');
  });

  it('a perfect detection: AP 1 where there is ground truth, -1 for empty area ranges', () => {
    const r = score(dataset([1], [{ image: 1, box: LARGE }]), [{ image: 1, box: LARGE, score: 0.9 }]);
    expect([r.ap, r.ap50, r.ap75, r.apl, r.ar1, r.ar100]).toEqual([1, 1, 1, 1, 1, 1]);
    expect([r.aps, r.apm, r.ars, r.arm]).toEqual([-1, -1, -1, -1]);
    expect(formatSummary(r.result.lines).split('\n')[3]).toBe(' Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = -1.000');
  });

  it('IoU exactly 0.5 matches at 0.50 and not above', () => {
    // Detection [10,10,100,100] vs gt [10,10,200,100]: intersection 10000, union 20000.
    const r = score(dataset([1], [{ image: 1, box: LARGE }]), [{ image: 1, box: [10, 10, 100, 100], score: 0.9 }]);
    expect(r.ap50).toBe(1);
    expect(r.ap75).toBe(0);
    expect(r.ap).toBeCloseTo(0.1, 12);
  });

  it('a duplicate is a false positive after the first match', () => {
    const gt = dataset([1], [{ image: 1, box: LARGE }, { image: 1, box: [300, 200, 150, 150] }]);
    const r = score(gt, [
      { image: 1, box: LARGE, score: 0.9 },
      { image: 1, box: LARGE, score: 0.8 },
      { image: 1, box: [300, 200, 150, 150], score: 0.7 },
    ]);
    // tp 1,1,2 fp 0,1,1: precision 1, .5, 2/3 -> envelope 1, 2/3, 2/3; recall .5, .5, 1.
    // Recall points 0..0.50 take 1 (51 of them), 0.51..1 take 2/3 (50).
    expect(r.ap).toBeCloseTo((51 + 50 * (2 / 3)) / 101, 12);
    expect(r.ar100).toBe(1);
    expect(r.ar1).toBe(0.5);
  });

  it('a detection on a crowd region is neither a true nor a false positive', () => {
    // Crowd IoU = intersection / detection area: a box inside the crowd has IoU 1 with it.
    const gt = dataset([1], [{ image: 1, box: LARGE }, { image: 1, box: [0, 200, 600, 250], crowd: true }]);
    const inCrowd = { image: 1, box: [20, 210, 50, 50], score: 0.95 };
    const r = score(gt, [inCrowd, { image: 1, box: LARGE, score: 0.5 }]);
    expect(r.ap).toBe(1);
    // Two detections may match the same crowd region.
    const twice = score(gt, [inCrowd, { ...inCrowd, box: [400, 300, 40, 40] }, { image: 1, box: LARGE, score: 0.5 }]);
    expect(twice.ap).toBe(1);
    // Without the crowd flag the same detection is a false positive ranked first.
    const plain = dataset([1], [{ image: 1, box: LARGE }, { image: 1, box: [0, 200, 600, 250] }]);
    expect(score(plain, [inCrowd, { image: 1, box: LARGE, score: 0.5 }]).ap).toBeLessThan(1);
  });

  it('a regular match is preferred to a better ignored one, and ignored gt does not count', () => {
    // gt A is counted for "all" and medium-sized by its area field; gt B is a crowd. The
    // detection overlaps B more (crowd IoU) but A enough: it matches A.
    const gt = dataset([1], [
      { image: 1, box: [0, 0, 100, 100] },
      { image: 1, box: [0, 0, 60, 100], crowd: true },
    ]);
    const r = score(gt, [{ image: 1, box: [0, 0, 60, 100], score: 0.9 }]);
    expect(r.ap50).toBe(1); // IoU with A = 0.6 >= 0.5: a true positive
    expect(r.ap75).toBe(0); // 0.6 < 0.75: matches the crowd instead, ignored -> no detections count
  });

  it('area ranges use the annotation area, and unmatched detections outside the range are ignored', () => {
    // A large-looking box annotated with a small area (as segmentation areas can be).
    const gt = dataset([1], [{ image: 1, box: LARGE, area: 500 }]);
    const r = score(gt, [{ image: 1, box: LARGE, score: 0.9 }, { image: 1, box: [400, 300, 10, 10], score: 0.95 }]);
    expect(r.aps).toBe(0.5); // FP (small) ranked first: precision 1/2 at all recall
    expect(r.apl).toBe(-1); // the only gt is small: no positives in large
    expect(r.apm).toBe(-1);
  });

  it('maxDets keeps the best-scored detections of each image and category', () => {
    const gt = dataset([1], [{ image: 1, box: LARGE }, { image: 1, box: [300, 200, 150, 150] }]);
    const r = score(gt, [
      { image: 1, box: [500, 10, 50, 50], score: 0.99 }, // FP, best score
      { image: 1, box: LARGE, score: 0.9 },
      { image: 1, box: [300, 200, 150, 150], score: 0.8 },
    ]);
    expect(r.ar1).toBe(0); // only the false positive survives maxDets=1
    expect(r.ar10).toBe(1);
    // More than 100 detections: the 101st (lowest score) never matches.
    const many = [...Array(100)].map((_, i) => ({ image: 1, box: [600, 400, 5, 5 + i], score: 0.5 + i / 1000 }));
    const truncated = score(dataset([1], [{ image: 1, box: LARGE }]), [...many, { image: 1, box: LARGE, score: 0.1 }]);
    expect(truncated.ar100).toBe(0);
  });

  it('a category without ground truth is -1 and left out of the mean; images without gt add false positives', () => {
    const gt = dataset([1, 2], [{ image: 1, box: LARGE, cat: 1 }]);
    const r = score(gt, [
      { image: 1, box: LARGE, cat: 1, score: 0.5 },
      { image: 2, box: LARGE, cat: 1, score: 0.9 }, // image 2 has no gt: a false positive first
      { image: 2, box: LARGE, cat: 2, score: 0.9 }, // category 2 has no gt anywhere
    ]);
    expect(r.ap).toBe(0.5);
    const perClass = perCategoryAp(r.result.accumulated);
    expect(perClass.map((c) => c.ap)).toEqual([0.5, -1]);
  });

  it('ties in score keep image order across images and file order within an image (stable mergesort)', () => {
    const gt = dataset([1, 2], [{ image: 1, box: LARGE }]);
    const tp = { image: 1, box: LARGE, score: 0.5 };
    const fpOtherImage = { image: 2, box: LARGE, score: 0.5 };
    // Across images: image 1 comes first whatever the file order.
    expect(score(gt, [fpOtherImage, tp]).ap).toBe(1);
    expect(score(gt, [tp, fpOtherImage]).ap).toBe(1);
    // Within an image: file order decides.
    const fpSameImage = { image: 1, box: [500, 400, 20, 20], score: 0.5 };
    expect(score(gt, [tp, fpSameImage]).ap).toBe(1);
    expect(score(gt, [fpSameImage, tp]).ap).toBe(0.5);
  });

  it('a match to annotation id 0 counts as no match, as in pycocotools', () => {
    const gt = dataset([1], [{ image: 1, box: LARGE, id: 0 }]);
    expect(score(gt, [{ image: 1, box: LARGE, score: 0.9 }]).ap).toBe(0);
  });

  it('prints like Python: round half to even on exact ties, numpy pairwise sums', () => {
    expect(formatFixed3(0.0625)).toBe('0.062');
    expect(formatFixed3(0.1875)).toBe('0.188');
    expect(formatFixed3(0.2904)).toBe('0.290');
    expect(formatFixed3(-1)).toBe('-1.000');
    const values = Float64Array.from({ length: 1000 }, (_, i) => 0.1 * ((i * 7919) % 13));
    let naive = 0;
    for (const v of values) naive += v;
    expect(pairwiseSum(values)).toBeCloseTo(naive, 9);
  });
});
