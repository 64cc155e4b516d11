/**
 * Bad annotations and results files: each is a DeimError naming the file, the entry and the
 * problem (where pycocotools asserts, crashes or silently drops).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGroundTruth, parseResults, readGroundTruth, readResults } from '../dist/eval/coco-dataset.js';
import { toCocoResults } from '../dist/eval/results-writer.js';
import { detectionAgreement } from '../dist/eval/agreement.js';

const dir = mkdtempSync(join(tmpdir(), 'deimv2-eval-input-'));
const GT = {
  images: [{ id: 7, file_name: 'a.jpg', width: 100, height: 100 }],
  categories: [{ id: 1, name: 'person' }, { id: 3, name: 'car' }],
  annotations: [{ id: 1, image_id: 7, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 }],
};
const gt = parseGroundTruth(GT, 'gt.json');
const ok = { image_id: 7, category_id: 1, bbox: [0, 0, 10, 10], score: 0.5 };

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function rejection(p: Promise<unknown> | (() => unknown)): Promise<{ code: string; message: string }> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error('expected an error');
}

describe('results files', () => {
  it('reads a valid file, computing area = w*h', async () => {
    const dt = await readResults(write('ok.json', JSON.stringify([ok, { ...ok, bbox: [1, 2, 3, 4] }])), gt);
    expect(dt.count).toBe(2);
    expect([...dt.area]).toEqual([100, 12]);
  });

  const cases: Array<[string, unknown, RegExp]> = [
    ['an image that is not in the annotations', [ok, { ...ok, image_id: 8 }], /entry 1: image_id 8 is not an image of gt\.json \(results do not correspond/],
    ['an unknown category (a class index instead of a COCO id)', [{ ...ok, category_id: 0 }], /entry 0: category_id 0 is not a category of gt\.json.*not class indices/],
    ['a bbox that is not 4 numbers', [{ ...ok, bbox: [0, 0, 5] }], /entry 0: "bbox" must be \[x, y, width, height\] of 4 finite numbers/],
    ['a missing score', [{ image_id: 7, category_id: 1, bbox: [0, 0, 1, 1] }], /entry 0: needs a finite numeric "score", got undefined/],
    ['an entry that is not an object', [ok, 5], /entry 1: must be an object/],
    ['an empty list (pycocotools fails on anns\\[0\\])', [], /the results list is empty/],
    ['not an array', { annotations: [ok] }, /must be a JSON array of \{image_id, category_id, bbox, score\}/],
  ];
  for (const [what, json, message] of cases) {
    it(`rejects ${what}`, async () => {
      const e = await rejection(() => parseResults(json, gt, 'results.json'));
      expect(e.code).toBe('ERR_EVAL_INPUT');
      expect(e.message).toMatch(/^results\.json: /);
      expect(e.message).toMatch(message);
    });
  }

  it('rejects malformed JSON and missing files, naming the file', async () => {
    const bad = write('bad.json', '[{"image_id": 7,');
    const e = await rejection(readResults(bad, gt));
    expect(e.code).toBe('ERR_EVAL_INPUT');
    expect(e.message).toContain(`${bad}: not valid JSON`);
    const missing = await rejection(readResults(join(dir, 'nope.json'), gt));
    expect(missing.code).toBe('ERR_INPUT_NOT_FOUND');
    expect(missing.message).toContain('nope.json: cannot read');
  });

  it('passes over results of images left out of the evaluation', () => {
    const dt = parseResults([ok, { ...ok, image_id: 8 }], gt, 'results.json', { skipImageIds: new Set([8]) });
    expect(dt.count).toBe(1);
  });
});

describe('annotations files', () => {
  it('rejects what is not a COCO instances object', async () => {
    expect((await rejection(() => parseGroundTruth([], 'a.json'))).message).toMatch(/^a\.json: a COCO annotations file must be a JSON object/);
    expect((await rejection(() => parseGroundTruth({ images: [], categories: {} }, 'a.json'))).message).toBe('a.json: "categories" must be an array');
    const noArea = { ...GT, annotations: [{ ...GT.annotations[0], area: undefined }] };
    expect((await rejection(() => parseGroundTruth(noArea, 'a.json'))).message).toBe('a.json: annotations[0]: needs a numeric "area"');
    const e = await rejection(readGroundTruth(write('gt-bad.json', '{')));
    expect(e.code).toBe('ERR_EVAL_INPUT');
  });

  it('sorts images and categories by id, and leaves out annotations of unknown images or categories', () => {
    const g = parseGroundTruth({
      images: [{ id: 9 }, { id: 2 }],
      categories: [{ id: 5, name: 'x' }, { id: 1, name: 'y' }],
      annotations: [
        { id: 1, image_id: 9, category_id: 5, bbox: [0, 0, 1, 1], area: 1 },
        { id: 2, image_id: 3, category_id: 5, bbox: [0, 0, 1, 1], area: 1 },
        { id: 3, image_id: 9, category_id: 4, bbox: [0, 0, 1, 1], area: 1 },
      ],
    }, 'a.json');
    expect(g.imageIds).toEqual([2, 9]);
    expect(g.categoryNames).toEqual(['y', 'x']);
    expect(g.boxes.count).toBe(1);
  });
});

describe('detections to COCO results, and agreement', () => {
  const det = (box: [number, number, number, number], score: number, categoryId = 1) => ({ label: 'person', classId: 0, categoryId, score, box });

  it('turns xyxy boxes into xywh with the category id', () => {
    expect(toCocoResults(7, [det([10, 20, 30, 60], 0.9, 3)])).toEqual([{ image_id: 7, category_id: 3, bbox: [10, 20, 20, 40], score: 0.9 }]);
  });

  it('pairs detections of the same class at IoU >= 0.5 above the score floor', () => {
    const a = [[det([0, 0, 10, 10], 0.9), det([50, 50, 60, 60], 0.8), det([0, 0, 5, 5], 0.1)]];
    const b = [[det([0, 0, 10, 11], 0.7), det([50, 50, 60, 60], 0.8, 2)]];
    const r = detectionAgreement(a, b);
    expect([r.countA, r.countB, r.matched]).toEqual([2, 2, 1]);
    expect(r.agreement).toBe(0.5);
    expect(r.meanScoreDelta).toBeCloseTo(-0.2, 12);
    expect(r.meanIou).toBeCloseTo(100 / 110, 12);
    expect(detectionAgreement([[]], [[]]).agreement).toBe(1);
  });
});
