/**
 * Caption layout in crowded pictures: captions do not cover each other where there is room,
 * stay inside the image, and higher scores are drawn last (on top) where there is not.
 * The crowded picture is COCO val2017 000000087038.jpg (14 annotated persons).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawDetections, layoutCaptions, type CaptionLayout } from '../dist/annotate/draw.js';
import { placeCaptions, rectsOverlap } from '../dist/annotate/captions.js';
import { COCO_CATEGORY_IDS, COCO_CLASS_NAMES, Detector, type Detection } from '../dist/index.js';
import { ATTO, COCO_ANNOTATIONS, COCO_IMAGES } from './helpers/paths.js';

const CROWDED = '000000087038.jpg';

function overlaps(captions: readonly CaptionLayout[]): string[] {
  const found: string[] = [];
  for (let i = 0; i < captions.length; i++) {
    for (let j = i + 1; j < captions.length; j++) {
      if (rectsOverlap(captions[i]!, captions[j]!)) found.push(`${captions[i]!.text} / ${captions[j]!.text}`);
    }
  }
  return found;
}

function expectInside(captions: readonly CaptionLayout[], width: number, height: number): void {
  for (const c of captions) {
    expect(c.left, c.text).toBeGreaterThanOrEqual(0);
    expect(c.top, c.text).toBeGreaterThanOrEqual(0);
    expect(c.left + c.width, c.text).toBeLessThanOrEqual(width);
    expect(c.top + c.height, c.text).toBeLessThanOrEqual(height);
  }
}

/** The ground-truth boxes of a COCO image as detections (scores falling in annotation order). */
function groundTruth(fileName: string): { detections: Detection[]; width: number; height: number } {
  const gt = JSON.parse(readFileSync(COCO_ANNOTATIONS, 'utf8')) as {
    images: Array<{ id: number; file_name: string; width: number; height: number }>;
    annotations: Array<{ image_id: number; category_id: number; bbox: [number, number, number, number] }>;
  };
  const image = gt.images.find((i) => i.file_name === fileName)!;
  const detections = gt.annotations
    .filter((a) => a.image_id === image.id)
    .map((a, k): Detection => {
      const classId = COCO_CATEGORY_IDS.indexOf(a.category_id);
      const [x, y, w, h] = a.bbox;
      return { label: COCO_CLASS_NAMES[classId]!, classId, categoryId: a.category_id, score: Math.max(0.05, 0.95 - k * 0.03), box: [x, y, x + w, y + h] };
    });
  return { detections, width: image.width, height: image.height };
}

describe('captions on a crowded COCO image', () => {
  let detector: Detector;
  beforeAll(async () => {
    detector = await Detector.create({ model: ATTO, backend: 'cpu', threads: 1 });
  });
  afterAll(() => detector?.close());

  it('the ground-truth boxes (14 persons and more): no two captions overlap, all inside the image', () => {
    const { detections, width, height } = groundTruth(CROWDED);
    expect(detections.filter((d) => d.label === 'person').length).toBe(14);
    const captions = layoutCaptions({ width, height }, detections);
    expect(captions.length).toBe(detections.length);
    expect(overlaps(captions)).toEqual([]);
    expectInside(captions, width, height);
  });

  it('the detector output at 0.4 and at 0.2: no overlaps, inside, drawn lowest score first', async () => {
    for (const threshold of [0.4, 0.2]) {
      const result = await detector.detect(path.join(COCO_IMAGES, CROWDED), { threshold });
      expect(result.detections.length).toBeGreaterThan(threshold === 0.4 ? 5 : 10);
      const captions = layoutCaptions(result, result.detections);
      expect(captions.length).toBe(result.detections.length);
      expect(overlaps(captions), `threshold ${threshold}`).toEqual([]);
      expectInside(captions, result.width, result.height);
      const scores = captions.map((c) => result.detections[c.index]!.score);
      expect(scores).toEqual([...scores].sort((a, b) => a - b));
    }
  });

  it('drawDetections paints the captions where layoutCaptions puts them', async () => {
    const { data, info } = await sharp(path.join(COCO_IMAGES, CROWDED)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const image = { data: new Uint8Array(data), width: info.width, height: info.height, channels: 3 as const };
    const { detections } = groundTruth(CROWDED);
    drawDetections(image, detections);
    for (const c of layoutCaptions(image, detections)) {
      // The caption's left column (padding, no text) is its class colour from top to bottom.
      const [r, g, b] = (await import('../dist/annotate/palette.js')).classColor(detections[c.index]!.classId);
      for (let y = c.top; y < c.top + c.height; y++) {
        const i = (y * image.width + c.left) * 3;
        expect([image.data[i], image.data[i + 1], image.data[i + 2]], `${c.text} row ${y}`).toEqual([r, g, b]);
      }
    }
  });
});

describe('caption placement', () => {
  const det = (box: [number, number, number, number], score: number, label = 'person'): Detection => ({ label, classId: 0, categoryId: 1, score, box });

  it('keeps the usual place (above the box) for a lone box, and goes inside at the top edge', () => {
    expect(layoutCaptions({ width: 200, height: 100 }, [det([20, 50, 150, 90], 0.87)], { fontScale: 1 })).toEqual([
      { index: 0, text: 'person 0.87', left: 20, top: 38, width: 69, height: 12 },
    ]);
    expect(layoutCaptions({ width: 80, height: 60 }, [det([70, 0, 80, 50], 0.87)], { fontScale: 1 })[0]).toMatchObject({ left: 11, top: 0 });
  });

  it('side-by-side boxes narrower than their captions: captions stack instead of covering each other', () => {
    // 20 persons standing in a row, 30 px apart, captions 69 px wide.
    const row = Array.from({ length: 20 }, (_, i) => det([10 + 30 * i, 200, 38 + 30 * i, 380], 0.3 + i * 0.03));
    const captions = layoutCaptions({ width: 640, height: 480 }, row, { fontScale: 1 });
    expect(overlaps(captions)).toEqual([]);
    expectInside(captions, 640, 480);
  });

  it('the highest score gets the usual place; where there is no room the higher score is drawn on top', () => {
    const rects = placeCaptions(
      [
        { box: [10, 50, 60, 90], width: 69, height: 12, score: 0.5 },
        { box: [12, 52, 62, 92], width: 69, height: 12, score: 0.9 },
      ],
      200,
      100,
    );
    expect(rects[1]).toEqual({ left: 12, top: 40, width: 69, height: 12 });
    expect(rectsOverlap(rects[0]!, rects[1]!)).toBe(false);

    // An image one caption tall: both captions must share the row; the 0.90 one ends up on top.
    const high = det([0, 0, 60, 12], 0.9, 'bbb');
    const low = det([0, 0, 60, 12], 0.3, 'aaa');
    const blank = () => ({ data: new Uint8Array(60 * 12 * 3).fill(100), width: 60, height: 12, channels: 3 as const });
    const both = blank();
    drawDetections(both, [high, low], { fontScale: 1, lineWidth: 1 });
    const highAlone = blank();
    drawDetections(highAlone, [high], { fontScale: 1, lineWidth: 1 });
    expect(Buffer.from(both.data).equals(Buffer.from(highAlone.data))).toBe(true);
  });

  it('is pure: the same input gives the same layout and nothing is mutated', () => {
    const items = [det([10, 10, 40, 40], 0.5), det([15, 12, 45, 42], 0.6)];
    const copy = JSON.parse(JSON.stringify(items));
    expect(layoutCaptions({ width: 100, height: 100 }, items)).toEqual(layoutCaptions({ width: 100, height: 100 }, items));
    expect(items).toEqual(copy);
  });
});
