/**
 * The results file read straight from its bytes (src/eval/results-bytes.ts) gives exactly what
 * JSON.parse + parseResults give: the same doubles bit for bit, the same entries, and, where the
 * file is not plain, the same result or the same error through that path.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGroundTruth, parseResults, parseResultsFile, parseResultsText, readGroundTruth } from '../dist/eval/coco-dataset.js';
import { parseResultsBytes } from '../dist/eval/results-bytes.js';
import { evaluateJson, evaluateResultsBytes } from '../dist/eval/metrics.js';
import { writeEvalData } from '../bench/lib/eval-data.js';

const GT = {
  images: [7, 8, 9].map((id) => ({ id, file_name: `${id}.jpg`, width: 100, height: 100 })),
  categories: [{ id: 1, name: 'person' }, { id: 3, name: 'car' }],
  annotations: [{ id: 1, image_id: 7, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 }],
};
const gt = parseGroundTruth(GT, 'gt.json');
const ok = { image_id: 7, category_id: 1, bbox: [0, 0, 10, 10], score: 0.5 };
const COLUMNS = ['imageIndex', 'categoryIndex', 'xywh', 'area', 'score'] as const;

type Outcome = { value: unknown } | { error: { code: unknown; message: string } };

function outcome(f: () => unknown): Outcome {
  try {
    return { value: f() };
  } catch (e) {
    return { error: { code: (e as { code?: unknown }).code, message: (e as Error).message } };
  }
}

/** Detections as plain arrays of doubles, -0 told from 0. */
function plain(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  const d = v as Record<string, unknown>;
  return {
    source: d.source,
    count: d.count,
    ...Object.fromEntries(COLUMNS.map((c) => [c, Array.from(d[c] as ArrayLike<number>, (x) => (Object.is(x, -0) ? '-0' : x))])),
  };
}

/** The bytes path against the JSON.parse path (what readResults did before). */
function same(text: string, options: { skipImageIds?: ReadonlySet<number> } = {}): { fast: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  const before = outcome(() => parseResults(parseResultsText(bytes, 'r.json'), gt, 'r.json', options));
  const now = outcome(() => parseResultsFile(bytes, gt, 'r.json', options));
  if ('value' in before) before.value = plain(before.value);
  if ('value' in now) now.value = plain(now.value);
  expect(now, text.slice(0, 200)).toEqual(before);
  return { fast: parseResultsBytes(bytes, gt, options) !== undefined };
}

describe('results files read from their bytes', () => {
  it('reads a plain file without JSON.parse, bit for bit as JSON.parse + parseResults', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'deimv2-results-bytes-'));
    const { gtFile, resultsFile } = writeEvalData(dir, { images: 40, dets: 30 });
    const big = await readGroundTruth(gtFile);
    const bytes = Buffer.from(await import('node:fs').then((fs) => fs.readFileSync(resultsFile)));
    const columns = parseResultsBytes(bytes, big);
    expect(columns).toBeDefined();
    const reference = parseResults(JSON.parse(bytes.toString('utf8')), big, 'r');
    expect(plain({ source: 'r', ...columns })).toEqual(plain(reference));
    expect(columns!.count).toBe(1200);
  });

  it('reads numbers as JSON.parse does, to the bit', () => {
    const numbers = [
      '0', '-0', '1', '-1', '0.5', '0.1', '0.30000000000000004', '1e5', '1E5', '1e+5', '1e-5', '1.5E-3', '-2.5e+2',
      '123456789012345', '1234567890123456', '12345678901234567890', '0.123456789012345678', '9007199254740993',
      '1e22', '1e23', '1e-22', '1e-23', '5e-324', '2e-324', '1e-400', '1.7976931348623157e308', '2.2250738585072014e-308',
      '4.9406564558e-324', '0.000001', '100000000000000000000000', '3.141592653589793', '2.718281828459045235360287',
      '1e0000003', '1e-0000003', '0e5', '0.0', '-0.0e-7',
    ];
    // And doubles as JSON.stringify writes them (17 significant digits at most).
    let state = 12345;
    const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let i = 0; i < 300; i++) numbers.push(JSON.stringify((random() - 0.3) * 10 ** Math.floor(random() * 12 - 6)));
    for (let i = 0; i < 100; i++) numbers.push((random() * 1000).toFixed(Math.floor(random() * 8)));
    for (const n of numbers) {
      const text = `[{"image_id":7,"category_id":1,"bbox":[${n},${n},${n},${n}],"score":${n}}]`;
      expect(same(text).fast, n).toBe(true);
    }
  });

  it('takes any key order, whitespace and other plain keys', () => {
    const texts = [
      ' \n\t[ { "score" : 0.25 , "bbox" : [ 1 , 2 , 3 , 4 ] , "category_id" : 3 , "image_id" : 8 } ]\r\n ',
      '[{"id":5,"image_id":7,"area":12.5,"category_id":1,"bbox":[1,2,3,4],"score":0.5,"note":"a é ü \u2028","flag":true,"x":false,"y":null}]',
      '[{"image_id":7,"category_id":1,"bbox":[1,2,-3,4],"score":0.5},{"image_id":9,"category_id":3,"bbox":[0.5,0.25,10,20],"score":1}]',
    ];
    for (const text of texts) expect(same(text).fast).toBe(true);
  });

  it('leaves anything else to JSON.parse + parseResults: the same result or the same error', () => {
    const o = JSON.stringify(ok);
    const texts = [
      // Same result, other shapes.
      `[{"image_id":7,"category_id":1,"bbox":[0,0,10,10],"score":0.1,"score":0.9}]`,
      `[{"image_id":7,"category_id":1,"bbox":[0,0,10,10],"sc\\u006fre":0.75}]`,
      `[{"image_id":7,"category_id":1,"bbox":[0,0,10,10],"score":0.5,"segmentation":[[1,2,3,4]]}]`,
      `[{"image_id":7,"category_id":1,"bbox":[0,0,10,10],"score":0.5,"name":"a\\"b"}]`,
      // Errors.
      '[]', ' [ ] ', '{}', '5', '', '   ', 'null', `[${o},]`, `[${o}]x`, `[${o}`, `\ufeff[${o}]`, `[${o}]\u0000`,
      `[${o},5]`, `[${o},null]`, `[${o},[]]`, '[{}]',
      '[{"image_id":6,"category_id":1,"bbox":[0,0,1,1],"score":0.5}]',
      '[{"image_id":"7","category_id":1,"bbox":[0,0,1,1],"score":0.5}]',
      '[{"image_id":7,"category_id":2,"bbox":[0,0,1,1],"score":0.5}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1],"score":0.5}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1,1],"score":0.5}]',
      '[{"image_id":7,"category_id":1,"bbox":"0,0,1,1","score":0.5}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1e999],"score":0.5}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":"0.5"}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":-1e400}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1]}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":01}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":.5}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":1.}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":1e}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":+1}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":-}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":0.5 "x":1}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":0.5,}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":0.5,"a\tb":1}]',
      '[{"image_id":7,"category_id":1,"bbox":[0,0,1,1],"score":0.5,"x":tru}]',
      '[{image_id:7}]',
      '['.repeat(100) + ']'.repeat(100),
    ];
    for (const text of texts) expect(same(text).fast, text).toBe(false);
  });

  it('passes over the results of images left out, as parseResults does', () => {
    const skip = new Set([8]);
    const text = JSON.stringify([ok, { ...ok, image_id: 8, category_id: 99 }, { ...ok, image_id: 9, score: 0.25 }]);
    const gt79 = parseGroundTruth({ ...GT, images: GT.images.filter((img) => img.id !== 8) }, 'gt.json');
    const bytes = Buffer.from(text);
    const columns = parseResultsBytes(bytes, gt79, { skipImageIds: skip });
    expect(columns).toBeDefined();
    expect(plain({ source: 'r', ...columns })).toEqual(plain(parseResults(JSON.parse(text), gt79, 'r', { skipImageIds: skip })));
    expect(columns!.count).toBe(2);
    expect(columns!.score.length).toBe(3);
  });

  it('random files: the same result or error both ways', () => {
    let state = 99;
    const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const pick = <T,>(xs: T[]): T => xs[Math.floor(random() * xs.length)]!;
    const space = () => pick(['', '', ' ', '\n', '\t', '  \r\n']);
    for (let f = 0; f < 200; f++) {
      const entries: string[] = [];
      const n = 1 + Math.floor(random() * 5);
      for (let i = 0; i < n; i++) {
        const fields = [
          `"image_id"${space()}:${space()}${pick(['7', '8', '9', '7.0', '6'])}`,
          `"category_id":${pick(['1', '3', '3e0', '2'])}`,
          `"bbox":[${[0, 0, 0, 0].map(() => space() + pick(['0', '1.5', '-2', '1e2', '0.1', '12345.678901234567'])).join(',')}]`,
          `"score":${pick(['0.5', '1', '0.99999999999999999', '7e-3'])}`,
        ];
        if (random() < 0.2) fields.push(pick(['"id":3', '"area":1.5', '"x":"y"', '"score":0.1', '"m":[1]']));
        if (random() < 0.05) fields.splice(Math.floor(random() * fields.length), 1);
        fields.sort(() => random() - 0.5);
        entries.push(`${space()}{${space()}${fields.join(`${space()},${space()}`)}${space()}}`);
      }
      same(`${space()}[${entries.join(',')}${space()}]${space()}`);
      same(`[${entries.join(',')}]`, { skipImageIds: new Set([6]) });
    }
  });

  it('evaluateResultsBytes: the figures and the error order of evaluateJson', () => {
    const text = JSON.stringify([ok, { ...ok, bbox: [1, 1, 9, 9], score: 0.25 }, { ...ok, image_id: 9, category_id: 3 }]);
    const a = evaluateJson(GT, 'gt.json', JSON.parse(text), 'r.json');
    const b = evaluateResultsBytes(GT, 'gt.json', Buffer.from(text), 'r.json');
    expect(b.result.stats).toEqual(a.result.stats);
    expect(b.perClass).toEqual(a.perClass);
    expect([...b.result.accumulated.precision]).toEqual([...a.result.accumulated.precision]);
    const limited = evaluateResultsBytes(GT, 'gt.json', Buffer.from(text), 'r.json', [7]);
    expect(limited.result.stats).toEqual(evaluateJson(GT, 'gt.json', JSON.parse(text), 'r.json', [7]).result.stats);
    // Bad annotations and bad results JSON: the results' error first, as when they were parsed first.
    const bothBad = outcome(() => evaluateResultsBytes({ images: 5 }, 'gt.json', Buffer.from('[{'), 'r.json'));
    expect(bothBad).toMatchObject({ error: { code: 'ERR_EVAL_INPUT', message: expect.stringMatching(/^r\.json: not valid JSON/) } });
    const gtBad = outcome(() => evaluateResultsBytes({ images: 5 }, 'gt.json', Buffer.from(text), 'r.json'));
    expect(gtBad).toMatchObject({ error: { code: 'ERR_EVAL_INPUT', message: 'gt.json: "images" must be an array' } });
  });
});
