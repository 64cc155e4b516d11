/**
 * Tests that need an NVIDIA GPU with TensorRT: `npm run test:gpu` (DEIMV2_GPU_TESTS=1). Elsewhere each
 * suite is skipped with the reason tensorrtAvailability() gives.
 */
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildEngine, checkEngine, createTensorRtBackend, probeTensorRt, tensorrtAvailability } from '../../dist/backends/tensorrt/index.js';

const availability = tensorrtAvailability();
const requested = process.env.DEIMV2_GPU_TESTS === '1';
const skipReason = !requested ? 'set DEIMV2_GPU_TESTS=1 (npm run test:gpu)' : !availability.available ? availability.detail : '';
if (skipReason) console.warn(`GPU tests skipped: ${skipReason}`);

const shared = path.resolve(import.meta.dirname, '..', '..', '..', 'shared');
const femto = path.join(shared, 'models', 'deimv2_hgnetv2_femto_coco.onnx');
const out = mkdtempSync(path.join(os.tmpdir(), 'deimv2-gpu-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.skipIf(skipReason !== '')('TensorRT on a GPU', () => {
  for (const precision of ['fp32', 'fp16'] as const) {
    it(`builds a validated ${precision} Femto engine and reuses it`, async () => {
      const first = await buildEngine({ model: femto, precision, maxBatch: 4, out, validateImages: path.join(shared, 'images') });
      expect(first.reused).toBe(false);
      expect(first.sidecar.validation?.passed).toBe(true);
      const again = await buildEngine({ model: femto, precision, maxBatch: 4, out });
      expect(again).toMatchObject({ reused: true, engine: first.engine });
    }, 900_000);
  }

  it('rebuilds a truncated engine instead of crashing', async () => {
    const built = await buildEngine({ model: femto, precision: 'fp32', maxBatch: 4, out });
    truncateSync(built.engine, 100);
    expect((await checkEngine(built.engine, undefined)).status).toBe('corrupt');
    const rebuilt = await buildEngine({ model: femto, precision: 'fp32', maxBatch: 4, out });
    expect(rebuilt.reused).toBe(false);
  }, 900_000);

  it('runs batches with several in flight and rejects bad native arguments', async () => {
    const built = await buildEngine({ model: femto, precision: 'fp32', maxBatch: 4, out });
    const backend = await createTensorRtBackend({ modelPath: femto, engine: built.engine, contexts: 2 });
    const size = backend.io.inputSize!;
    const images = new Float32Array(3 * 3 * size * size).fill(0.5);
    const sizes = new Int32Array([640, 480, 640, 480, 640, 480]);
    const results = await Promise.all([1, 2, 3].map(() => backend.run({ images, sizes, batch: 3 })));
    for (const r of results) {
      expect(r.labels.length).toBe(3 * r.perImage);
      expect(Array.from(r.labels).every((l) => l >= 0 && l < 80)).toBe(true);
      expect(r.scores).toEqual(results[0]!.scores);
    }
    const probe = probeTensorRt();
    if (!probe.ok) throw new Error(probe.reason);
    const engine = await probe.addon.openEngine({ engine: built.engine, contexts: 1 });
    expect(() => engine.infer(0, 5)).toThrow(/between 1 and 4 for batch/);
    expect(() => engine.infer(1, 1)).toThrow(/between 0 and 0 for slot/);
    const inFlight = engine.infer(0, 1);
    expect(() => engine.infer(0, 1)).toThrow(/slot 0 is in flight/);
    await inFlight;
    const buffers = engine.buffers(0);
    await engine.close();
    expect(buffers.images!.byteLength).toBe(0); // detached: JS can no longer reach freed memory
    expect(() => engine.infer(0, 1)).toThrow(/closed/);
    await backend.close();
  }, 900_000);
});
