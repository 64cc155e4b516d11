/** The deimv2 command line end to end, as a user runs it. */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { COCO_IMAGES, EXAMPLE } from './helpers/paths.js';
import { tempDir, write } from './helpers/images.js';
import { deimv2 } from './helpers/cli.js';


describe('deimv2 detect', () => {
  it('writes the JSON document and an annotated image for one file', async () => {
    const dir = tempDir();
    const out = path.join(dir, 'annotated.png');
    const json = path.join(dir, 'result.json');
    const r = await deimv2(['detect', EXAMPLE, '--out', out, '--json', json, '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/atto on cpu/);
    expect(r.stderr).toMatch(/1 image\(s\), \d+ detection\(s\) in [\d.]+ s \| model [\d.]+ img\/s, end to end [\d.]+ img\/s/);
    const doc = JSON.parse(readFileSync(json, 'utf8'));
    expect(Object.keys(doc)).toEqual(['model', 'backend', 'results']);
    expect(doc).toMatchObject({ model: 'atto', backend: 'cpu' });
    expect(doc.results[0]).toMatchObject({ file: EXAMPLE, width: 500, height: 375 });
    expect(Object.keys(doc.results[0].detections[0])).toEqual(['label', 'classId', 'categoryId', 'score', 'box']);
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 500, 375]);
    // The annotation changed pixels of the image.
    const a = await sharp(out).raw().toBuffer();
    const b = await sharp(EXAMPLE).raw().toBuffer();
    expect(a.equals(b)).toBe(false);
  });

  it('prints JSON to stdout with --json -, filtered by class and threshold', async () => {
    const r = await deimv2(['detect', EXAMPLE, '--json', '-', '--classes', 'person', '--threshold', '0.2', '-q']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    const dets = doc.results[0].detections as Array<{ label: string; score: number }>;
    expect(dets.length).toBeGreaterThan(3);
    expect(dets.every((d) => d.label === 'person' && d.score >= 0.2)).toBe(true);
  });

  it('runs a folder with a bad file: every good result written, failures reported, exit 1', async () => {
    const dir = tempDir();
    const input = path.join(dir, 'in');
    mkdirSync(input);
    const files = ['000000006818.jpg', '000000017627.jpg', '000000025560.jpg'];
    for (const f of files) copyFileSync(path.join(COCO_IMAGES, f), path.join(input, f));
    write(input, 'broken.jpg', 'not an image at all');
    write(input, 'notes.txt', 'ignored: not an image extension');
    const out = path.join(dir, 'out');
    const json = path.join(dir, 'r.json');
    const r = await deimv2(['detect', input, '--out', out, '--json', json, '--batch', '2']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/1 of 4 file\(s\) failed/);
    expect(r.stderr).toMatch(/broken\.jpg: not an image/);
    expect(r.stderr).toMatch(/3 image\(s\), \d+ detection\(s\), 1 failed/);
    for (const f of files) expect(existsSync(path.join(out, f)), f).toBe(true);
    const doc = JSON.parse(readFileSync(json, 'utf8'));
    expect(doc.results).toHaveLength(4);
    const broken = doc.results.find((x: { file: string }) => x.file.endsWith('broken.jpg'));
    expect(broken.error).toMatch(/not an image/);
    expect(broken.detections).toBeUndefined();
  });

  it('keeps annotated outputs of same-named inputs from different folders apart', async () => {
    const dir = tempDir();
    for (const sub of ['a', 'b']) {
      mkdirSync(path.join(dir, sub));
      copyFileSync(EXAMPLE, path.join(dir, sub, 'photo.jpg'));
    }
    const out = path.join(dir, 'out');
    const r = await deimv2(['detect', path.join(dir, 'a'), path.join(dir, 'b'), '--out', out, '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(out, 'photo.jpg'))).toBe(true);
    expect(existsSync(path.join(out, 'photo-1.jpg'))).toBe(true);
  });

  it('globs, and reports a folder with no images', async () => {
    const empty = tempDir();
    const r = await deimv2(['detect', empty, '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/folder holds no images/);
    const g = await deimv2(['detect', path.join(COCO_IMAGES, '00000001*.jpg'), '--json', '-', '-q']);
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(g.stdout).results.length).toBeGreaterThan(0);
  });

  it('rejects a wrong threshold, an unknown variant and an unavailable backend with clear messages', async () => {
    const t = await deimv2(['detect', EXAMPLE, '--threshold', 'high']);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/--threshold must be a number from 0 to 1, got "high"/);
    const v = await deimv2(['detect', EXAMPLE, '--model', 'mega']);
    expect(v.stderr).toMatch(/unknown DEIMv2 variant "mega"/);
    const b = await deimv2(['detect', EXAMPLE, '--backend', 'tensorrt']);
    if (b.code !== 0) expect(b.stderr).toMatch(/TensorRT unavailable: /);
  });
});

describe('deimv2 info', () => {
  it('lists the variants, the files found and the backends', async () => {
    const r = await deimv2(['info']);
    expect(r.code, r.stderr).toBe(0);
    for (const v of ['atto', 'femto', 'pico', 'n', 's', 'm', 'l', 'x']) expect(r.stdout).toMatch(new RegExp(`^  ${v} `, 'm'));
    expect(r.stdout).toMatch(/femto .*deimv2_hgnetv2_femto_coco\.onnx \(env\)/);
    expect(r.stdout).toMatch(/cpu +available/);
    expect(r.stdout).toMatch(/tensorrt +(available|unavailable)/);
    const j = JSON.parse((await deimv2(['info', '--json'])).stdout);
    expect(j.variants.find((v: { name: string }) => v.name === 'x')).toMatchObject({ inputSize: 640, normalization: 'imagenet', queries: 300 });
  });
});
