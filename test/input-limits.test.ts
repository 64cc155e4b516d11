/**
 * Hostile input files, one table per reader (track's detections JSONL, eval's annotations and
 * results): each case gets a DeimError with a stable code naming the input, the line or field and
 * the limit, in bounded time and memory (sparse multi-GB files cost no disk).
 */
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INPUT_LIMITS, parseJsonBounded, readLinesBounded } from '../dist/input/limits.js';
import { readDetectionsJsonl } from '../dist/track/io.js';
import { ByteTracker } from '../dist/track/index.js';
import { MAX_FRAME_DETECTIONS } from '../dist/track/check.js';
import { MAX_CATEGORIES, parseGroundTruth, readGroundTruth, readResults } from '../dist/eval/coco-dataset.js';

const dir = mkdtempSync(join(tmpdir(), 'deimv2-limits-'));
function file(name: string, text: string | Buffer): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}
function sparse(name: string, bytes: number, head = ''): string {
  const f = file(name, head);
  truncateSync(f, bytes);
  return f;
}
async function error(p: () => Promise<unknown> | unknown): Promise<{ code: string; message: string }> {
  try {
    await p();
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('expected an error');
}
async function drain(f: string): Promise<void> {
  for await (const _ of readDetectionsJsonl(f)) void _;
}

const det = { box: [0, 0, 10, 10], score: 0.9, classId: 0 };
const frame = (n: number, dets = [det]) => JSON.stringify({ frame: n, pts: n / 30, detections: dets });
const GB = 1024 ** 3;

describe('track --detections reader', () => {
  const cases: Array<[string, () => string, string, RegExp]> = [
    ['empty', () => file('empty.jsonl', ''), 'ERR_INPUT_EMPTY', /has no frames/],
    ['one huge line (sparse 3 GB, no newline)', () => sparse('big.jsonl', 3 * GB), 'ERR_INPUT_FORMAT', /line 1: binary data/],
    ['binary garbage', () => file('bin.jsonl', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 10])), 'ERR_INPUT_FORMAT', /line 1: binary data/],
    ['truncated mid-record', () => file('trunc.jsonl', frame(0) + '\n' + frame(1).slice(0, 20)), 'ERR_INPUT_UNREADABLE', /line 2: not a JSON line/],
    ['wrong types', () => file('types.jsonl', JSON.stringify({ frame: '0', detections: [] }) + '\n'), 'ERR_INPUT_UNREADABLE', /line 1: "frame" must be an integer/],
    ['NaN/Infinity (null in JSON)', () => file('nan.jsonl', frame(0, [{ ...det, box: [0, 0, null, 1e400] }]) + '\n'), 'ERR_INPUT_UNREADABLE', /not a finite number/],
    ['negative sizes', () => file('neg.jsonl', frame(0, [{ ...det, box: [5, 5, 1, 1] }]) + '\n'), 'ERR_INPUT_UNREADABLE', /negative width or height/],
    ['duplicate frame ids', () => file('dup.jsonl', frame(3) + '\n' + frame(3) + '\n'), 'ERR_INPUT_UNREADABLE', /line 2: frames out of order/],
    ['too many detections in a frame', () => file('many.jsonl', frame(0, Array(MAX_FRAME_DETECTIONS + 1).fill(det)) + '\n'), 'ERR_TOO_MANY_DETECTIONS', /line 1 \(frame 0\): 1001 detections .* limit of 1000 a frame/],
    ['deep nesting', () => file('deep.jsonl', '['.repeat(100000) + ']'.repeat(100000) + '\n'), 'ERR_INPUT_UNREADABLE', /line 1: not a JSON object/],
  ];
  it.each(cases)('%s', async (_name, make, code, message) => {
    const f = make();
    const t0 = Date.now();
    const e = await error(() => drain(f));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message).toContain(f);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a text line over the line limit is refused after reading at most the limit', async () => {
    const f = file('long.jsonl', frame(0) + '\n' + ' '.repeat(INPUT_LIMITS.maxLineBytes + 1) + '\n');
    const e = await error(() => drain(f));
    expect(e).toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    expect(e.message).toMatch(/line 2 is longer than the limit of 16 MiB/);
  });

  it('lines split across chunks and CRLF are read whole', async () => {
    const long = 'x'.repeat(3 * 1024 * 1024);
    const f = file('crlf.txt', `a\r\n${long}\r\nb`);
    const lines: string[] = [];
    for await (const { text } of readLinesBounded(f)) lines.push(text);
    expect(lines).toEqual(['a', long, 'b']);
  });

  it('ByteTracker.update refuses a frame over the limit with the same code', () => {
    expect(() => new ByteTracker().update(Array(MAX_FRAME_DETECTIONS + 1).fill(det))).toThrow(expect.objectContaining({ code: 'ERR_TOO_MANY_DETECTIONS' }));
  });
});

const GT = {
  images: [{ id: 1, file_name: 'a.jpg', width: 100, height: 100 }, { id: 2, file_name: 'b.jpg', width: 100, height: 100 }],
  categories: [{ id: 1, name: 'person' }],
  annotations: [
    { id: 1, image_id: 1, category_id: 1, bbox: [0, 0, 10, 10], area: 100, iscrowd: 0 },
    { id: 2, image_id: 2, category_id: 1, bbox: [50, 50, 20, 20], area: 400, iscrowd: 0 },
  ],
};

describe('eval --annotations / --results readers', () => {
  const ann = (patch: object) => ({ ...GT, annotations: [{ ...GT.annotations[0], ...patch }] });
  const cases: Array<[string, () => string, string, RegExp]> = [
    ['empty', () => file('e.json', ''), 'ERR_EVAL_INPUT', /not valid JSON/],
    ['sparse 3 GB', () => sparse('big.json', 3 * GB), 'ERR_INPUT_TOO_LARGE', /3072 MiB, over the limit of 500 MiB/],
    ['binary garbage', () => file('bin.json', Buffer.from([0x7b, 0, 0xff, 0xfe])), 'ERR_INPUT_FORMAT', /NUL byte at offset 1/],
    ['truncated mid-record', () => file('t.json', JSON.stringify(GT).slice(0, 60)), 'ERR_EVAL_INPUT', /not valid JSON/],
    ['wrong types: string iscrowd', () => file('s.json', JSON.stringify(ann({ iscrowd: '0' }))), 'ERR_EVAL_INPUT', /annotations\[0\]: "iscrowd" must be 0 or 1, got "0"/],
    ['no image_id', () => file('i.json', JSON.stringify(ann({ image_id: undefined }))), 'ERR_EVAL_INPUT', /annotations\[0\]: needs a numeric "image_id"/],
    ['no category_id', () => file('c.json', JSON.stringify(ann({ category_id: null }))), 'ERR_EVAL_INPUT', /annotations\[0\]: needs a numeric "category_id"/],
    ['no id (even on an image outside the set)', () => file('n.json', JSON.stringify(ann({ id: 'x', image_id: 99 }))), 'ERR_EVAL_INPUT', /annotations\[0\]: needs a numeric "id"/],
    ['NaN/Infinity bbox', () => file('nan.json', JSON.stringify(ann({ bbox: [0, 0, null, 1] }))), 'ERR_EVAL_INPUT', /4 finite numbers/],
    ['negative sizes', () => file('neg.json', JSON.stringify(ann({ bbox: [0, 0, -1, 1] }))), 'ERR_EVAL_INPUT', /negative width or height/],
    ['a million categories', () => file('cats.json', JSON.stringify({ ...GT, categories: Array.from({ length: 1e6 }, (_, i) => ({ id: i + 1, name: 'c' })) })), 'ERR_TOO_MANY_CATEGORIES', /1000000 categories, over the evaluation's limit of 2048/],
    ['deep nesting', () => file('deep.json', '['.repeat(100000) + ']'.repeat(100000)), 'ERR_INPUT_TOO_LARGE', /nested deeper than the limit of 64/],
  ];
  it.each(cases)('%s', async (_name, make, code, message) => {
    const f = make();
    const t0 = Date.now();
    const e = await error(() => readGroundTruth(f));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message).toContain(f);
    // Bounded time, with room for a loaded 2-core machine (a hang or a quadratic read takes far longer).
    expect(Date.now() - t0).toBeLessThan(60_000);
  });

  it('results files go through the same bounds', async () => {
    const gt = parseGroundTruth(GT, 'gt.json');
    expect(await error(() => readResults(sparse('r.json', 3 * GB), gt))).toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    expect(await error(() => readResults(file('rd.json', '['.repeat(1000) + ']'.repeat(1000)), gt))).toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
  });

  it('MAX_CATEGORIES categories are still taken', () => {
    expect(parseGroundTruth({ ...GT, categories: Array.from({ length: MAX_CATEGORIES }, (_, i) => ({ id: i + 1 })) }, 'g').categoryIds.length).toBe(MAX_CATEGORIES);
  });

  it('brackets inside strings do not count as nesting', () => {
    expect(parseJsonBounded(JSON.stringify({ name: '['.repeat(1000) + '"\\' }), 'x')).toEqual({ name: '['.repeat(1000) + '"\\' });
  });

  it('duplicate annotation ids score as pycocotools: every annotation of the id becomes a copy of the last', () => {
    // pycocotools: anns[id] keeps the last, imgToAnns keeps both, loadAnns(getAnnIds()) returns anns[id] twice.
    const dup = { ...GT, annotations: [GT.annotations[0], { ...GT.annotations[1], id: 1 }] };
    const g = parseGroundTruth(dup, 'dup.json');
    expect(g.boxes.count).toBe(2);
    expect(Array.from(g.boxes.imageIndex)).toEqual([1, 1]); // both are the image-2 box
    expect(Array.from(g.boxes.xywh.subarray(0, 8))).toEqual([50, 50, 20, 20, 50, 50, 20, 20]);
  });
});

describe('--class-names reader', () => {
  const cases: Array<[string, () => string, string, RegExp]> = [
    ['empty', () => file('cn-empty.txt', ''), 'ERR_CLASS_NAMES', /holds no class names/],
    ['sparse 3 GB', () => sparse('cn-big.txt', 3 * GB), 'ERR_INPUT_TOO_LARGE', /over the limit of 16 MiB/],
    ['binary garbage', () => file('cn-bin.txt', Buffer.from([0x61, 0x0a, 0, 0x62])), 'ERR_INPUT_FORMAT', /NUL byte/],
    ['truncated JSON', () => file('cn-trunc.json', '[{"id": 1, "name": "a"'), 'ERR_CLASS_NAMES', /not valid JSON/],
    ['deep nesting', () => file('cn-deep.json', '['.repeat(100000) + ']'.repeat(100000)), 'ERR_INPUT_TOO_LARGE', /nested deeper than the limit of 64/],
  ];
  it.each(cases)('%s', async (_name, make, code, message) => {
    const { loadClassNames } = await import('../dist/models/classes.js');
    const f = make();
    const e = await error(() => loadClassNames(f));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message).toContain(f);
  });
});

describe('duplicate annotation ids against pycocotools', () => {
  it('every 7th annotation sharing the id of the one before: the 12 figures equal pycocotools', async () => {
    const { readFileSync } = await import('node:fs');
    const { evaluateJson } = await import('../dist/eval/metrics.js');
    const { COCO_ANNOTATIONS, REFERENCE } = await import('./helpers/paths.js');
    const golden = JSON.parse(readFileSync(new URL('./fixtures/eval/pycocotools-duplicate-ids.json', import.meta.url), 'utf8')) as { stats: number[] };
    const d = JSON.parse(readFileSync(COCO_ANNOTATIONS, 'utf8')) as { annotations: Array<{ id: number }> };
    for (let k = 7; k < d.annotations.length; k += 7) d.annotations[k]!.id = d.annotations[k - 1]!.id;
    const results = JSON.parse(readFileSync(join(REFERENCE, 'atto_coco50_official.json'), 'utf8'));
    const { metrics } = evaluateJson(d, 'dup.json', results, 'atto_coco50_official.json');
    Object.values(metrics).forEach((v, i) => expect(v).toBeCloseTo(golden.stats[i]!, 12));
  });
});

describe('serve --config reader', () => {
  const cam = 'rtsp://127.0.0.1:8554/cam';
  const yaml = (name: string, body: string) => file(name, `streams:\n  - id: a\n    source: ${cam}\n${body}`);
  const bomb = () => {
    let y = 'a: &a [x,x,x,x,x,x,x,x,x]\n';
    for (let i = 0; i < 9; i++) y += `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill('*' + String.fromCharCode(97 + i)).join(',')}]\n`;
    return file('sc-bomb.yaml', y);
  };
  const points = (n: number) => Array.from({ length: n }, (_, i) => [500 + 400 * Math.cos((2 * Math.PI * i) / n), 500 + 400 * Math.sin((2 * Math.PI * i) / n)].map((v) => v.toFixed(2)).join(',')).join(',');
  const cases: Array<[string, () => string, string, RegExp]> = [
    ['empty', () => file('sc-empty.json', ''), 'ERR_INPUT_FORMAT', /not valid JSON/],
    ['sparse 3 GB', () => sparse('sc-big.yaml', 3 * GB), 'ERR_INPUT_TOO_LARGE', /3072 MiB, over the limit of 4 MiB/],
    ['binary garbage', () => file('sc-bin.yaml', Buffer.from([0x73, 0, 0xff, 0x0a])), 'ERR_INPUT_FORMAT', /NUL byte at offset 1/],
    ['truncated mid-record', () => file('sc-trunc.json', '{"streams":[{"id":"a","sour'), 'ERR_INPUT_FORMAT', /not valid JSON/],
    ['wrong types', () => file('sc-types.json', JSON.stringify({ streams: { id: 'a' } })), 'ERR_INVALID_ARGUMENT', /: streams: must be an array of streams/],
    ['NaN threshold', () => yaml('sc-nan.yaml', '    threshold: .nan\n'), 'ERR_INVALID_ARGUMENT', /: streams\[0\]\.threshold: .*got NaN/],
    ['Infinity maxFps', () => yaml('sc-inf.yaml', '    maxFps: .inf\n'), 'ERR_INVALID_ARGUMENT', /: streams\[0\]\.maxFps: .*got Infinity/],
    ['negative maxFps', () => yaml('sc-neg.yaml', '    maxFps: -3\n'), 'ERR_INVALID_ARGUMENT', /: streams\[0\]\.maxFps: .*got -3/],
    ['duplicate ids', () => file('sc-dup.json', JSON.stringify({ streams: [{ id: 'a', source: cam }, { id: 'a', source: cam }] })), 'ERR_INVALID_ARGUMENT', /: streams\[1\]\.id: "a" is used by another stream/],
    ['1,000 streams', () => file('sc-many.json', JSON.stringify({ streams: Array.from({ length: 1e3 }, (_, i) => ({ id: `s${i}`, source: cam })) })), 'ERR_INPUT_TOO_LARGE', /1000 streams, over the limit of 256/],
    ['200,000 counting lines', () => file('sc-lines.json', JSON.stringify({ streams: [{ id: 'a', source: cam, lines: Array(2e5).fill('0,0,1,1') }] })), 'ERR_INVALID_ARGUMENT', /streams\[0\]\.lines: 200000 counting lines, over the limit of 100/],
    ['a zone of 100,000 points (its check is quadratic)', () => file('sc-zone.json', JSON.stringify({ streams: [{ id: 'a', source: cam, zones: [points(1e5)] }] })), 'ERR_INVALID_ARGUMENT', /streams\[0\]\.zones\[0\]: --zone "[0-9.,]+\.\.\.": more than 1000 points, the limit of a zone/],
    ['__proto__ key', () => file('sc-proto.json', `{"streams":[{"id":"a","source":"${cam}","__proto__":{"x":1}}]}`), 'ERR_INVALID_ARGUMENT', /streams\[0\]\.__proto__: unknown field/],
    ['YAML alias bomb', bomb, 'ERR_INPUT_FORMAT', /not valid YAML: Excessive alias count/],
    ['deep YAML nesting', () => file('sc-deep.yaml', 'a: ' + '['.repeat(50000) + ']'.repeat(50000)), 'ERR_INPUT_TOO_LARGE', /YAML nested deeper than the limit of 16 levels/],
    ['deep JSON nesting', () => file('sc-deep.json', '['.repeat(100000) + ']'.repeat(100000)), 'ERR_INPUT_TOO_LARGE', /nested deeper than the limit of 64/],
  ];
  it.each(cases)('%s', async (_name, make, code, message) => {
    const { readConfigFile } = await import('../dist/serve/config.js');
    const f = make();
    const t0 = Date.now();
    const e = await error(() => readConfigFile(f, { allowDirs: [] }));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message.startsWith(f)).toBe(true);
    expect(e.message.length).toBeLessThan(400);
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});

describe('--line / --zone specs', () => {
  it('a zone over 1,000 points is refused before its quadratic check; 1,000 are taken', async () => {
    const { checkTrackSessionOptions } = await import('../dist/track/check.js');
    const ring = (n: number) => Array.from({ length: n }, (_, i) => [500 + 400 * Math.cos((2 * Math.PI * i) / n), 500 + 400 * Math.sin((2 * Math.PI * i) / n)].map((v) => v.toFixed(3)).join(',')).join(',');
    const t0 = Date.now();
    expect(await error(() => checkTrackSessionOptions({ zones: [ring(200000)] }))).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/^--zone ".{57}\.\.\.": more than 1000 points/) });
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(checkTrackSessionOptions({ zones: [ring(1000)] }).zones[0]!.points.length).toBe(2000);
    expect(await error(() => checkTrackSessionOptions({ lines: Array(101).fill('0,0,1,1') }))).toMatchObject({ message: '101 counting lines, over the limit of 100' });
    expect(await error(() => checkTrackSessionOptions({ zones: Array(101).fill('0,0,9,0,9,9') }))).toMatchObject({ message: '101 zones, over the limit of 100' });
  });
});
