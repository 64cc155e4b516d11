/**
 * Paths of the TensorRT backend (src/backends/tensorrt/) and the engine code (src/engine/) that the
 * Detector and CLI tests do not reach, on the simulated GPU runtime: the Backend seam run() with
 * batches split over slots, its argument and closed-state errors, leases without frame staging,
 * createTensorRtBackend, argument checks of recordEngine/buildEngine, malformed engine sidecars,
 * validation image folders and an unknown DEIMV2_GPU_RUNTIME. Outputs are compared with the CPU
 * backend (onnxruntime) on the same tensors.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COCO_IMAGES, EXAMPLE, MODEL_DIR } from './helpers/paths.js';
import { tempDir, useSimulatedRuntime } from './helpers/sim.js';

useSimulatedRuntime();  // before anything loads the addon
const trt = await import('../dist/backends/tensorrt/index.js');
const engineApi = await import('../dist/engine/index.js');
const { recordEngine } = await import('../dist/engine/record.js');
const { createTensorRtBackend } = await import('../dist/engine/open.js');
const { buildEngine } = await import('../dist/engine/build.js');
const { checkEngine, readSidecar, sidecarPath } = await import('../dist/engine/cache.js');
const { validationImages } = await import('../dist/engine/validate.js');
const { loadAddon, resetAddonForTests } = await import('../dist/backends/tensorrt/native.js');
const { CpuSession } = await import('../dist/backends/cpu/session.js');
const { decodeInput } = await import('../dist/image/decode.js');
const { imageToTensor, tensorSize } = await import('../dist/image/tensor.js');
const { modelSpec } = await import('../dist/models/model-spec.js');
const { resolveModel } = await import('../dist/models/resolve.js');

const tmp = tempDir('sim-coverage');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const files = ['000000006818.jpg', '000000017627.jpg', '000000025560.jpg'].map((f) => path.join(COCO_IMAGES, f));
const engine = path.join(tmp, 'atto.stretch.b2.engine');
const model = resolveModel('atto', { modelDir: MODEL_DIR });
let side = 0;
let batch: { images: Float32Array; sizes: Int32Array; batch: number };
let cpu: { labels: Int32Array; boxes: Float32Array; scores: Float32Array };

beforeAll(async () => {
  await recordEngine({ model: 'atto', modelDir: MODEL_DIR, inputs: files, out: engine, maxBatch: 2, includeValidationImage: false });
  const session = await CpuSession.create(model.path, { threads: 1 });
  try {
    side = modelSpec(model, session.io).inputSize;
    const images = new Float32Array(files.length * tensorSize(side));
    const sizes = new Int32Array(files.length * 2);
    for (const [i, f] of files.entries()) {
      const { image } = await decodeInput(f);
      const t = imageToTensor(image, side, 'stretch', modelSpec(model, session.io).normalization, images, i * tensorSize(side));
      sizes.set([t.frameWidth, t.frameHeight], 2 * i);
    }
    batch = { images, sizes, batch: files.length };
    const raw = await session.run(batch);
    cpu = { labels: Int32Array.from(raw.labels), boxes: Float32Array.from(raw.boxes), scores: Float32Array.from(raw.scores) };
  } finally {
    await session.close();
  }
}, 120_000);

describe('TensorRtBackend as a Backend (simulated runtime)', () => {
  it('the folder indexes export the backend and engine API', () => {
    expect(typeof trt.openEngineFile).toBe('function');
    expect(typeof trt.TensorRtBackend.open).toBe('function');
    expect(trt.tensorrtAvailability()).toMatchObject({ name: 'tensorrt', available: true });
    expect(trt.hasFastFp16('8.6')).toBe(true);
    expect(trt.hasFastFp16('6.1')).toBe(false);
    expect(Object.keys(engineApi).length).toBeGreaterThan(5);
  });

  it('run() splits a batch of 3 over slots of 2 and equals the CPU backend; bad tensors and a closed backend are errors', async () => {
    const backend = await createTensorRtBackend({ modelPath: model, engine, maxBatch: 2, gpuPreprocess: false, contexts: 2 });
    expect(backend.gpuPreprocessing).toBe(false);
    expect(backend.description).toMatch(/CPU preprocessing/);
    const raw = await backend.run(batch);
    expect(raw.batch).toBe(3);
    expect(Array.from(raw.labels)).toEqual(Array.from(cpu.labels));
    expect(Array.from(raw.boxes)).toEqual(Array.from(cpu.boxes));
    expect(Array.from(raw.scores)).toEqual(Array.from(cpu.scores));
    await expect(backend.run({ ...batch, batch: 2 })).rejects.toMatchObject({ code: 'ERR_TENSOR_SIZE' });
    await expect(backend.run({ ...batch, batch: 0 })).rejects.toMatchObject({ code: 'ERR_TENSOR_SIZE' });
    // A lease without frame staging refuses runFrames; release() twice hands the slot back once.
    const lease = await backend.acquire();
    expect(lease.frames).toBeUndefined();
    await expect(lease.runFrames(1, {} as never)).rejects.toMatchObject({ code: 'ERR_BACKEND_FAILED' });
    lease.release();
    lease.release();
    const closing = backend.close();
    expect(backend.close()).toBe(closing);
    await closing;
    await expect(backend.run(batch)).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await expect(backend.acquire()).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  });

  it('with more callers than slots, a released slot goes to the next waiter', async () => {
    const backend = await createTensorRtBackend({ modelPath: model, engine, maxBatch: 2, contexts: 1 });
    try {
      const runs = await Promise.all([0, 1, 2].map((i) => backend.run({ images: batch.images.subarray(i * tensorSize(side), (i + 1) * tensorSize(side)), sizes: batch.sizes.subarray(2 * i, 2 * i + 2), batch: 1 })));
      runs.forEach((r, i) => expect(Array.from(r.scores)).toEqual(Array.from(cpu.scores.subarray(i * r.perImage, (i + 1) * r.perImage))));
    } finally {
      await backend.close();
    }
  });
});

describe('engine argument and file checks (simulated runtime)', () => {
  it('recordEngine and buildEngine refuse bad arguments before any work', async () => {
    await expect(recordEngine({ model: 'atto', modelDir: MODEL_DIR, inputs: files, out: engine, resize: 'fill' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(recordEngine({ model: 'atto', modelDir: MODEL_DIR, inputs: files, out: engine, maxBatch: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(recordEngine({ model: 'atto', modelDir: MODEL_DIR, inputs: path.join(tmp, 'nowhere'), out: engine })).rejects.toMatchObject({ code: 'ERR_INPUT_NOT_FOUND' });
    const empty = path.join(tmp, 'empty');
    mkdirSync(empty, { recursive: true });
    await expect(recordEngine({ model: 'atto', modelDir: MODEL_DIR, inputs: empty, out: engine })).rejects.toMatchObject({ code: 'ERR_NO_IMAGES' });
    const out = path.join(tmp, 'cache');
    await expect(buildEngine({ model, out, maxBatch: 2.5 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /maxBatch/ });
    await expect(buildEngine({ model, out, maxBatch: 2, optBatch: 3 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /optBatch/ });
    await expect(buildEngine({ model, out, precision: 'int8' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /precision/ });
    await expect(buildEngine({ model, out, device: 99 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /device/ });
  });

  it('malformed sidecars make the engine corrupt, saying why', async () => {
    const file = path.join(tmp, 'fake.engine');
    writeFileSync(file, 'not an engine');
    const sidecarFile = sidecarPath(file);
    const good = {
      key: 'k', onnxSha256: 'a', gpuName: 'g', computeCapability: '9.0', tensorrtVersion: '10.13', precision: 'fp32',
      engineSha256: '0'.repeat(64), engineBytes: 13, profile: { min: 1, opt: 1, max: 1 },
    };
    const cases: [string, RegExp][] = [
      ['{ not json', /not valid JSON/],
      [JSON.stringify({ ...good, gpuName: 3 }), /lacks the string field "gpuName"/],
      [JSON.stringify({ ...good, profile: null }), /lacks engineBytes or profile/],
      [JSON.stringify({ ...good, engineBytes: 12 }), /has 13 bytes, its sidecar says 12/],
      [JSON.stringify(good), /sha256 .* differs from its sidecar/],
    ];
    for (const [text, reason] of cases) {
      writeFileSync(sidecarFile, text);
      const check = await checkEngine(file, undefined, false);
      expect(check.status, text).toBe('corrupt');
      expect('reason' in check ? check.reason : '').toMatch(reason);
    }
    // A sidecar that cannot be read (a folder in its place) is an error naming it.
    rmSync(sidecarFile);
    mkdirSync(sidecarFile);
    await expect(readSidecar(sidecarFile)).rejects.toMatchObject({ code: 'ERR_ENGINE_INVALID', message: /cannot read engine sidecar/ });
    expect(await checkEngine(path.join(tmp, 'absent.engine'), undefined)).toMatchObject({ status: 'missing' });
  });

  it('validation images: the example alone, plus a folder, or a clear error', async () => {
    expect(await validationImages()).toEqual([EXAMPLE]);
    const dir = path.join(tmp, 'validate');
    mkdirSync(dir, { recursive: true });
    await expect(validationImages(dir)).rejects.toMatchObject({ code: 'ERR_NO_IMAGES' });
    await expect(validationImages(path.join(tmp, 'missing'))).rejects.toMatchObject({ code: 'ERR_INPUT_NOT_FOUND' });
    writeFileSync(path.join(dir, 'b.PNG'), '');
    writeFileSync(path.join(dir, 'a.jpg'), '');
    writeFileSync(path.join(dir, 'notes.txt'), '');
    expect(await validationImages(dir)).toEqual([EXAMPLE, path.join(dir, 'a.jpg'), path.join(dir, 'b.PNG')]);
  });

  it('a raw frame in shared memory (video frames when the budget is tight) equals one in ordinary memory, GPU or CPU preprocessing', async () => {
    const { Detector } = await import('../dist/index.js');
    const built = await buildEngine({ model: 'atto', modelDir: MODEL_DIR, out: path.join(tmp, 'shared-frames'), precision: 'fp32', validate: false });
    const [w, h] = [640, 480];
    const shared = Buffer.from(new SharedArrayBuffer(w * h * 3));
    const plain = Buffer.alloc(w * h * 3);
    for (let i = 0; i < plain.length; i++) plain[i] = shared[i] = (i * 31) % 251;
    for (const gpuPreprocess of [true, false]) {
      const d = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'tensorrt', engine: built.engine, gpuPreprocess });
      try {
        const a = await d.detect({ data: shared, width: w, height: h, channels: 3 });
        const b = await d.detect({ data: plain, width: w, height: h, channels: 3 });
        expect(a.detections.length, `gpuPreprocess ${gpuPreprocess}`).toBeGreaterThan(0);
        expect(a.detections).toEqual(b.detections);
      } finally {
        await d.close();
      }
    }
  });

  it('an unknown DEIMV2_GPU_RUNTIME is an error that names the accepted values', () => {
    const saved = process.env.DEIMV2_GPU_RUNTIME;
    try {
      process.env.DEIMV2_GPU_RUNTIME = 'cuda';
      resetAddonForTests();
      expect(loadAddon()).toMatchObject({ error: expect.stringMatching(/DEIMV2_GPU_RUNTIME must be "tensorrt" or "simulated", got "cuda"/) });
    } finally {
      process.env.DEIMV2_GPU_RUNTIME = saved;
      resetAddonForTests();
    }
    expect(loadAddon().addon?.runtime()).toBe('simulated');
  });
});
