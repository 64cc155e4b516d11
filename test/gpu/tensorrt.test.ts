/**
 * Tests that need an NVIDIA GPU with TensorRT: `npm run test:gpu` (DEIMV2_GPU_TESTS=1). Elsewhere each
 * suite is skipped with the reason tensorrtAvailability() gives.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planFrames, probeTensorRt, tensorrtAvailability, writeFrames } from '../../dist/backends/tensorrt/index.js';
import { buildEngine, checkEngine, createTensorRtBackend } from '../../dist/engine/index.js';
import { decodeBuffer } from '../../dist/image/decode.js';
import { imageToTensor, tensorSize } from '../../dist/image/tensor.js';

const availability = tensorrtAvailability();
const requested = process.env.DEIMV2_GPU_TESTS === '1';
const skipReason = !requested ? 'set DEIMV2_GPU_TESTS=1 (npm run test:gpu)' : !availability.available ? availability.detail
  : process.env.DEIMV2_GPU_RUNTIME === 'simulated' ? 'DEIMV2_GPU_RUNTIME=simulated: these tests are for real TensorRT (test/sim-*.test.ts cover the simulated runtime)' : '';
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

  it('the preprocessing kernel writes exactly imageToTensor\'s tensor, and frames and tensors give the same detections', async () => {
    const built = await buildEngine({ model: femto, precision: 'fp32', maxBatch: 4, out });
    const backend = await createTensorRtBackend({ modelPath: femto, engine: built.engine, contexts: 1, maxBatch: 4 });
    expect(backend.gpuPreprocessing).toBe(true);
    const files = [path.join(shared, 'images', 'example.jpg'), ...['000000006818.jpg', '000000017627.jpg', '000000037777.jpg'].map((f) => path.join(shared, 'coco', 'val2017', f))];
    const images = await Promise.all(files.map((f) => decodeBuffer(readFileSync(f), f)));
    const side = backend.io.inputSize!;
    for (const mode of ['stretch', 'letterbox'] as const) {
      const lease = await backend.acquire();
      try {
        const planned = planFrames(images, side, mode, 'none');
        writeFrames(images, lease.frames!, planned);
        planned.transforms.forEach((t, i) => lease.setSize(i, t.frameWidth, t.frameHeight));
        const gpuRaw = await lease.runFrames(images.length, planned);
        const gpu = { labels: gpuRaw.labels.slice(), boxes: gpuRaw.boxes.slice(), scores: gpuRaw.scores.slice() };
        const onGpu = (await lease.readInput(images.length)).slice();
        const cpu = new Float32Array(images.length * tensorSize(side));
        images.forEach((image, i) => imageToTensor(image, side, mode, 'none', cpu, i * tensorSize(side)));
        // Bit-exact uint8 stage => identical floats.
        expect(Buffer.compare(Buffer.from(onGpu.buffer), Buffer.from(cpu.buffer)), mode).toBe(0);
        lease.input.set(cpu);
        const cpuRaw = await lease.run(images.length);
        expect(cpuRaw.scores).toEqual(gpu.scores);
        expect(cpuRaw.boxes).toEqual(gpu.boxes);
        expect(cpuRaw.labels).toEqual(gpu.labels);
      } finally {
        lease.release();
      }
    }
    await backend.close();
  }, 900_000);

  it('replays inference from a CUDA graph once a batch size repeats (or says why not), with the same results', async () => {
    const built = await buildEngine({ model: femto, precision: 'fp32', maxBatch: 4, out });
    const backend = await createTensorRtBackend({ modelPath: femto, engine: built.engine, contexts: 1, maxBatch: 4 });
    const size = backend.io.inputSize!;
    const images = new Float32Array(2 * 3 * size * size).map((_, i) => (i % 255) / 255);
    const sizes = new Int32Array([640, 480, 500, 375]);
    const first = await backend.run({ images, sizes, batch: 2 });
    for (let i = 0; i < 3; i++) expect((await backend.run({ images, sizes, batch: 2 })).scores).toEqual(first.scores);
    const [graph] = backend.cudaGraphs;
    if (graph!.failure) console.warn(`CUDA graph capture given up: ${graph!.failure}`);
    else expect(graph).toEqual({ enabled: true, batch: 2, failure: '' });
    await backend.run({ images: images.subarray(0, 3 * size * size), sizes: sizes.subarray(0, 2), batch: 1 });
    expect(backend.cudaGraphs[0]!.batch).toBe(-1); // the shape changed: that graph is gone
    const closing = backend.close();
    expect(backend.close()).toBe(closing);
    await closing;
  }, 900_000);

  it('a second engine.close() returns the first one\'s promise', async () => {
    const built = await buildEngine({ model: femto, precision: 'fp32', maxBatch: 4, out });
    const probe = probeTensorRt();
    if (!probe.ok) throw new Error(probe.reason);
    const engine = await probe.addon.openEngine({ engine: built.engine, contexts: 1 });
    const inFlight = engine.infer(0, 1);
    const first = engine.close();
    const second = engine.close();
    expect(second).toBe(first);
    await Promise.all([inFlight, second]);
    expect(engine.closed).toBe(true);
  }, 900_000);
});
