/** The Detector on real models and real images, checked against the official pipeline's output. */
import { readdirSync, readFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector, type Detection, type DetectionResult } from '../dist/index.js';
import { ATTO, COCO_IMAGES, EXAMPLE, FEMTO, MODEL_DIR, REFERENCE } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

interface RefDet { image_id: number; category_id: number; bbox: [number, number, number, number]; score: number }

function iou(a: number[], b: number[]): number {
  const ix = Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!));
  const iy = Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));
  const inter = ix * iy;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union > 0 ? inter / union : 0;
}

/** Fraction of the reference's detections at score >= 0.4 that ours reproduce (same class, IoU >= 0.9, score within 0.03). */
function parity(ours: Map<number, Detection[]>, ref: RefDet[]): { matched: number; total: number } {
  let matched = 0, total = 0;
  for (const r of ref) {
    if (r.score < 0.4) continue;
    total++;
    const box = [r.bbox[0], r.bbox[1], r.bbox[0] + r.bbox[2], r.bbox[1] + r.bbox[3]];
    const hit = (ours.get(r.image_id) ?? []).some((d) => d.categoryId === r.category_id && iou(d.box, box) >= 0.9 && Math.abs(d.score - r.score) <= 0.03);
    if (hit) matched++;
  }
  return { matched, total };
}

const cocoFiles = readdirSync(COCO_IMAGES).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(COCO_IMAGES, f));
const imageId = (file: string) => Number(path.basename(file, '.jpg'));

describe('Atto (pool layout, the default)', () => {
  let detector: Detector;
  beforeAll(async () => {
    detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu' });
  });
  afterAll(() => detector?.close());

  it('finds the persons in example.jpg, in image pixels', async () => {
    const r = await detector.detect(EXAMPLE);
    expect(r).toMatchObject({ file: EXAMPLE, width: 500, height: 375 });
    const persons = r.detections.filter((d) => d.label === 'person' && d.classId === 0 && d.categoryId === 1);
    expect(persons.length).toBeGreaterThanOrEqual(3);
    for (const d of r.detections) {
      expect(d.score).toBeGreaterThanOrEqual(0.4);
      expect(d.box[0]).toBeGreaterThanOrEqual(0);
      expect(d.box[2]).toBeLessThanOrEqual(500);
      expect(d.box[3]).toBeLessThanOrEqual(375);
      expect(d.box[2]).toBeGreaterThan(d.box[0]);
    }
    // Scores are sorted, highest first.
    const scores = r.detections.map((d) => d.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });

  it('reproduces the official pipeline on the 50 COCO images (score >= 0.4)', async () => {
    const ref = JSON.parse(readFileSync(path.join(REFERENCE, 'atto_coco50_official.json'), 'utf8')) as RefDet[];
    const results = await detector.detectBatch(cocoFiles);
    const ours = new Map<number, Detection[]>();
    results.forEach((r, i) => {
      expect('error' in r).toBe(false);
      ours.set(imageId(cocoFiles[i]!), (r as DetectionResult).detections);
    });
    const { matched, total } = parity(ours, ref);
    console.log(`Atto parity with the official pipeline: ${matched}/${total} reference detections (score >= 0.4) reproduced`);
    expect(total).toBeGreaterThan(50);
    expect(matched / total).toBeGreaterThanOrEqual(0.95);
  });

  it('gives the same detections for a file, its bytes, and its decoded pixels', async () => {
    const fromFile = await detector.detect(EXAMPLE);
    const fromBytes = await detector.detect(readFileSync(EXAMPLE));
    const { data, info } = await sharp(EXAMPLE).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const fromRaw = await detector.detect({ data, width: info.width, height: info.height, channels: 3 });
    expect(fromBytes.detections).toEqual(fromFile.detections);
    expect(fromRaw.detections).toEqual(fromFile.detections);
    expect(fromBytes.file).toBeUndefined();
  });

  it('applies threshold, class filter and max detections per call', async () => {
    const all = await detector.detect(EXAMPLE, { threshold: 0 });
    // The exports return the top 300 over queries x classes.
    expect(all.detections.length).toBe(300);
    const two = await detector.detect(EXAMPLE, { threshold: 0, maxDetections: 2 });
    expect(two.detections).toEqual(all.detections.slice(0, 2));
    const persons = await detector.detect(EXAMPLE, { threshold: 0.1, classes: ['person'] });
    expect(persons.detections.length).toBeGreaterThan(0);
    expect(persons.detections.every((d) => d.label === 'person')).toBe(true);
  });

  it('returns the decoded image when asked, and a 1x1 image gives no detections', async () => {
    const r = await detector.detect(EXAMPLE, { returnImage: true });
    expect(r.image).toMatchObject({ width: 500, height: 375, channels: 3 });
    expect(r.image!.data.length).toBe(500 * 375 * 3);
    const tiny = await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } }).png().toBuffer();
    const t = await detector.detect(tiny);
    expect(t).toMatchObject({ width: 1, height: 1 });
    expect(t.detections).toEqual([]);
  });

  it('applies EXIF orientation: boxes are in the upright image', async () => {
    const dir = tempDir();
    // Stored rotated 90 degrees clockwise with orientation 8 (rotate 90 CCW to view): upright = original.
    const rotated = path.join(dir, 'rotated.jpg');
    await sharp(EXAMPLE).rotate(90).withMetadata({ orientation: 8 }).jpeg({ quality: 95 }).toFile(rotated);
    const upright = await detector.detect(EXAMPLE);
    const r = await detector.detect(rotated);
    expect([r.width, r.height]).toEqual([500, 375]);
    const top = upright.detections[0]!;
    expect(r.detections.some((d) => d.label === top.label && iou(d.box, top.box) > 0.8)).toBe(true);
  });
});

describe('layouts, batching and resize modes agree', () => {
  it('single layout and batch 4 give the pool layout\'s detections', async () => {
    const files = cocoFiles.slice(0, 8);
    const pool = await Detector.create({ model: ATTO, backend: 'cpu', layout: 'pool' });
    const single = await Detector.create({ model: ATTO, backend: 'cpu', layout: 'single' });
    const batched = await Detector.create({ model: ATTO, backend: 'cpu', batch: 4 });
    try {
      const [a, b, c] = await Promise.all([pool.detectBatch(files), single.detectBatch(files), batched.detectBatch(files)]);
      expect(single.description).toContain('single');
      for (let i = 0; i < files.length; i++) {
        const da = (a[i] as DetectionResult).detections, db = (b[i] as DetectionResult).detections, dc = (c[i] as DetectionResult).detections;
        expect(db.map((d) => d.label)).toEqual(da.map((d) => d.label));
        expect(dc.map((d) => d.label)).toEqual(da.map((d) => d.label));
        da.forEach((d, j) => {
          expect(db[j]!.score).toBeCloseTo(d.score, 4);
          expect(dc[j]!.score).toBeCloseTo(d.score, 4);
          // Boxes too: concurrent calls must not mix up the images' sizes.
          for (let k = 0; k < 4; k++) {
            expect(db[j]!.box[k]).toBeCloseTo(d.box[k]!, 2);
            expect(dc[j]!.box[k]).toBeCloseTo(d.box[k]!, 2);
          }
        });
      }
    } finally {
      await Promise.all([pool.close(), single.close(), batched.close()]);
    }
  });

  it('letterbox maps boxes back to image pixels', async () => {
    const stretch = await Detector.create({ model: ATTO, backend: 'cpu', threads: 1 });
    const letterbox = await Detector.create({ model: ATTO, backend: 'cpu', threads: 1, resize: 'letterbox' });
    try {
      const a = await stretch.detect(EXAMPLE);
      const b = await letterbox.detect(EXAMPLE);
      expect(b.detections.length).toBeGreaterThan(0);
      for (const d of b.detections) expect(d.box[3]).toBeLessThanOrEqual(375);
      // The strongest letterbox detection is one the stretch pipeline also finds.
      const top = b.detections[0]!;
      expect(a.detections.some((d) => d.label === top.label && iou(d.box, top.box) > 0.6)).toBe(true);
    } finally {
      await Promise.all([stretch.close(), letterbox.close()]);
    }
  });
});

describe('Femto', () => {
  it('finds persons and donuts in example.jpg, and reproduces the official pipeline on COCO', async () => {
    const d = await Detector.create({ model: 'femto', modelDir: MODEL_DIR, backend: 'cpu' });
    try {
      expect(d.spec).toMatchObject({ variant: 'femto', inputSize: 416, normalization: 'none' });
      const r = await d.detect(EXAMPLE);
      expect(r.detections.some((x) => x.label === 'person')).toBe(true);
      expect(r.detections.some((x) => x.classId === 54 && x.label === 'donut')).toBe(true);
      const ref = JSON.parse(readFileSync(path.join(REFERENCE, 'femto_coco50_official.json'), 'utf8')) as RefDet[];
      const files = cocoFiles.slice(0, 25);
      const ids = new Set(files.map(imageId));
      const results = await d.detectBatch(files);
      const ours = new Map(results.map((x, i) => [imageId(files[i]!), (x as DetectionResult).detections]));
      const { matched, total } = parity(ours, ref.filter((x) => ids.has(x.image_id)));
      console.log(`Femto parity with the official pipeline: ${matched}/${total} on 25 images`);
      expect(matched / total).toBeGreaterThanOrEqual(0.95);
    } finally {
      await d.close();
    }
  });
});

describe('custom model files', () => {
  it('takes the input size from the graph when the file name names no variant', async () => {
    const dir = tempDir();
    const custom = path.join(dir, 'my-detector.onnx');
    copyFileSync(FEMTO, custom);
    const d = await Detector.create({ model: custom, backend: 'cpu', threads: 1, classNames: ['a', 'b'] });
    try {
      expect(d.spec).toMatchObject({ inputSize: 416, normalization: 'none' });
      expect(d.spec.variant).toBeUndefined();
      const r = await d.detect(EXAMPLE, { threshold: 0.3 });
      // Classes beyond the two names given are labelled by index.
      expect(r.detections.some((x) => x.label === 'a' || /^class \d+$/.test(x.label))).toBe(true);
    } finally {
      await d.close();
    }
  });
});
