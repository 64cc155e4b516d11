/**
 * DetectorOptions.preload (issue 9, start-up): the first runner decodes and resizes the named files
 * while the model loads, and serves the first call from that tensor only when the call asks for
 * exactly those files (and the same returnImage) and the graph agrees with the spec the variant
 * implied; any other first call runs as usual. The CLI passes its first chunk.
 */
import { availableParallelism } from 'node:os';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector, type DetectionResult } from '../dist/index.js';
import { COCO_IMAGES, EXAMPLE, MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { deimv2 } from './helpers/cli.js';

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
    for (const preload of [['a.jpg'], { images: 'a.jpg' }, { images: [1] }, { images: [''] }, null, { images: ['a.jpg'], alone: 'yes' }]) {
      await expect(Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', preload } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    }
  });

  describe('alone: the preloaded images are the whole run', () => {
    for (const layout of ['pool', 'single'] as const) {
      it(`${layout}: the first call is served from the tensor made on this thread; later calls still run (their worker starts then)`, async () => {
        const file = swappable(`alone-${layout}.jpg`);
        const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', layout, preload: { images: [file], alone: true } });
        try {
          copyFileSync(OTHER, file);
          expect(strip(await d.detect(file))).toEqual(expected.example);
          expect(strip(await d.detect(file))).toEqual(expected.other);
          const batch = await d.detectBatch([EXAMPLE, OTHER]);
          expect(batch.map((r) => strip(r as DetectionResult))).toEqual([expected.example, expected.other]);
        } finally {
          await d.close();
        }
      });
    }

    it('missing and undecodable files fail their own items; returnImage gives the decoded image', async () => {
      const bad = path.join(dir, 'alone-not-an-image.jpg');
      writeFileSync(bad, 'plain text');
      const missing = path.join(dir, 'alone-missing.jpg');
      const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', batch: 3, preload: { images: [missing, bad, EXAMPLE], returnImage: true, alone: true } });
      try {
        const results = await d.detectBatch([missing, bad, EXAMPLE], { returnImage: true });
        expect(results.map((r) => ('error' in r ? r.error.code : 'ok'))).toEqual(['ERR_INPUT_NOT_FOUND', 'ERR_INPUT_UNREADABLE', 'ok']);
        const r = results[2] as DetectionResult;
        expect(strip(r)).toEqual(expected.example);
        expect([r.image?.width, r.image?.height, r.image?.data.length]).toEqual([expected.example.width, expected.example.height, expected.example.width * expected.example.height * 3]);
      } finally {
        await d.close();
      }
    });

    it('closed before any other call: nothing is left running, and a call after close is ERR_CLOSED', async () => {
      const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', layout: 'single', preload: { images: [EXAMPLE], alone: true } });
      expect(strip(await d.detect(EXAMPLE))).toEqual(expected.example);
      await d.close();
      await expect(d.detect(EXAMPLE)).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    });

    it('deimv2 detect of one image: one preprocessing worker beside the main thread on 2+ cores (none on 1), never the per-core pool', async () => {
      const times = path.join(dir, 'one-image-threads.jsonl');
      process.env.DEIMV2_STAGE_TIMES = times;
      let r;
      try {
        r = await deimv2(['detect', EXAMPLE, '--model', 'atto', '--backend', 'cpu', '--json', '-', '--quiet']);
      } finally {
        delete process.env.DEIMV2_STAGE_TIMES;
      }
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).results[0].detections.length).toBe(expected.example.detections.length);
      // One line per JavaScript thread that ran (written as it exits). With a second core the decode
      // overlaps the model's load in one worker; one core does it on the main thread. A per-core
      // pool (a model loaded per worker) would be more lines: it made one image 1.4x slower.
      const lines = readFileSync(times, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { main: boolean });
      expect(lines.map((l) => l.main).sort()).toEqual(availableParallelism() < 2 ? [true] : [false, true]);
      // Two images: the second goes through the preprocessing worker, as before.
      const times2 = path.join(dir, 'two-image-threads.jsonl');
      process.env.DEIMV2_STAGE_TIMES = times2;
      try {
        r = await deimv2(['detect', EXAMPLE, OTHER, '--model', 'atto', '--backend', 'cpu', '--json', '-', '--quiet']);
      } finally {
        delete process.env.DEIMV2_STAGE_TIMES;
      }
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).results.map((x: DetectionResult) => x.detections)).toEqual([expected.example.detections, expected.other.detections]);
      expect(readFileSync(times2, 'utf8').trim().split('\n').length).toBeGreaterThan(1);
    });

    it('deimv2 detect of a folder starts only the pool workers, all at once: no model on the main thread, no preprocessing worker', async () => {
      const folder = path.join(dir, 'folder-threads');
      mkdirSync(folder, { recursive: true });
      for (let i = 0; i < 4; i++) copyFileSync(i % 2 ? OTHER : EXAMPLE, path.join(folder, `${i}.jpg`));
      const times = path.join(dir, 'folder-threads.jsonl');
      process.env.DEIMV2_STAGE_TIMES = times;
      let r;
      try {
        r = await deimv2(['detect', folder, '--model', 'atto', '--backend', 'cpu', '--threads', '2', '--json', '-', '--quiet']);
      } finally {
        delete process.env.DEIMV2_STAGE_TIMES;
      }
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).results.map((x: DetectionResult) => x.detections)).toEqual([0, 1, 2, 3].map((i) => (i % 2 ? expected.other : expected.example).detections));
      const lines = readFileSync(times, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { main: boolean; stages: Record<string, unknown> });
      // Before: the main thread ran the first images on its own session, beside a preprocessing worker.
      expect(lines.find((l) => l.main)!.stages.infer).toBeUndefined();
      const workers = lines.filter((l) => !l.main);
      expect(workers.length).toBe(2);
      expect(workers.every((l) => l.stages.infer !== undefined)).toBe(true);
    });
  });
});
