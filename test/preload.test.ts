/**
 * DetectorOptions.preload (issue 9, start-up): the first runner decodes and resizes the named files
 * while the model loads, and serves the first call from that tensor only when the call asks for
 * exactly those files (and the same returnImage) and the graph agrees with the spec the variant
 * implied; any other first call runs as usual. The CLI passes its first chunk.
 */
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector, type DetectionResult } from '../dist/index.js';
import { COCO_IMAGES, EXAMPLE, MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

const dir = tempDir('deimv2-preload-');
const OTHER = path.join(COCO_IMAGES, '000000006818.jpg');
const strip = (r: DetectionResult) => ({ width: r.width, height: r.height, detections: r.detections });
let expected: { example: ReturnType<typeof strip>; other: ReturnType<typeof strip> };

beforeAll(async () => {
  const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu' });
  try {
    expected = { example: strip(await d.detect(EXAMPLE)), other: strip(await d.detect(OTHER)) };
  } finally {
    await d.close();
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A copy of EXAMPLE that the test replaces with OTHER after the detector is created. */
function swappable(name: string): string {
  const file = path.join(dir, name);
  copyFileSync(EXAMPLE, file);
  return file;
}

describe('preload', () => {
  for (const layout of ['pool', 'single'] as const) {
    it(`${layout}: the first call is served from the tensor made while the model loaded`, async () => {
      const file = swappable(`served-${layout}.jpg`);
      const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', layout, preload: { images: [file] } });
      try {
        // Replaced after the model loaded: a result of the original shows the file was read before.
        copyFileSync(OTHER, file);
        expect(strip(await d.detect(file))).toEqual(expected.example);
        // Later calls read the file as it is now.
        expect(strip(await d.detect(file))).toEqual(expected.other);
      } finally {
        await d.close();
      }
    });
  }

  it('a first call with other files, or another returnImage, runs as usual', async () => {
    const file = swappable('other-call.jpg');
    const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', preload: { images: [file] } });
    try {
      expect(strip(await d.detect(OTHER))).toEqual(expected.other);
    } finally {
      await d.close();
    }
    const file2 = swappable('return-image.jpg');
    const d2 = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', preload: { images: [file2] } });
    try {
      copyFileSync(OTHER, file2);
      const r = await d2.detect(file2, { returnImage: true });
      expect(strip(r)).toEqual(expected.other);
      expect(r.image?.width).toBe(expected.other.width);
    } finally {
      await d2.close();
    }
  });

  it('with returnImage preloaded, the first call gets the decoded image too', async () => {
    const file = swappable('with-image.jpg');
    const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', preload: { images: [file], returnImage: true } });
    try {
      copyFileSync(OTHER, file);
      const r = await d.detect(file, { returnImage: true });
      expect(strip(r)).toEqual(expected.example);
      expect([r.image?.width, r.image?.height]).toEqual([expected.example.width, expected.example.height]);
    } finally {
      await d.close();
    }
  });

  it('a spec the graph contradicts (inputSize 640 for the 320 Atto graph) discards the preloaded tensor', async () => {
    const file = swappable('graph-wins.jpg');
    const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', inputSize: 640, preload: { images: [file] } });
    try {
      expect(d.spec.inputSize).toBe(320);
      copyFileSync(OTHER, file);
      expect(strip(await d.detect(file))).toEqual(expected.other);
    } finally {
      await d.close();
    }
  });

  it('a preloaded file that is missing or not an image fails its own call, not create()', async () => {
    const bad = path.join(dir, 'not-an-image.jpg');
    writeFileSync(bad, 'plain text');
    const missing = path.join(dir, 'missing.jpg');
    const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', preload: { images: [missing, bad, EXAMPLE] } });
    try {
      const results = await d.detectBatch([missing, bad, EXAMPLE]);
      expect(results.map((r) => ('error' in r ? r.error.code : 'ok'))).toEqual(['ERR_INPUT_NOT_FOUND', 'ERR_INPUT_UNREADABLE', 'ok']);
      expect(strip(results[2] as DetectionResult)).toEqual(expected.example);
    } finally {
      await d.close();
    }
  });

  it('bad preload options are refused', async () => {
    for (const preload of [['a.jpg'], { images: 'a.jpg' }, { images: [1] }, { images: [''] }, null]) {
      await expect(Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', preload } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    }
  });
});
