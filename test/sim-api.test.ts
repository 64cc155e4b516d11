/**
 * The TensorRT path through the public API on the simulated GPU runtime: 64 concurrent detect()
 * calls and detectVideo give the CPU backend's results exactly; GPU preprocessing really runs the
 * kernel's source; --device 1 pools; close during in-flight work and close twice; teardown returns
 * every byte and happens off the JS thread, on the right device (the simulator records violations).
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cocoSubset, tempDir, useSimulatedRuntime } from './helpers/sim.js';
import { SHARED } from './helpers/paths.js';

useSimulatedRuntime();  // before anything loads the addon
const { Detector } = await import('../dist/index.js');
const { loadAddon } = await import('../dist/backends/tensorrt/native.js');
const { recordEngine } = await import('../dist/engine/record.js');
const addon = loadAddon().addon!;

const tmp = tempDir('sim-api');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const imageDir = cocoSubset(tmp, 12);
const files = (await import('node:fs')).readdirSync(imageDir).sort().map((f) => path.join(imageDir, f));
const engine = path.join(tmp, 'atto.stretch.b4.engine');
const reference = new Map<string, unknown>();

const settle = async () => {
  // Teardown of collected objects runs on the release thread: give it a moment.
  for (let i = 0; i < 50 && addon.simulator().engines > 0; i++) await new Promise((r) => setTimeout(r, 20));
};

beforeAll(async () => {
  expect(addon.runtime()).toBe('simulated');
  await recordEngine({ model: 'atto', inputs: imageDir, out: engine, maxBatch: 4 });
  const cpu = await Detector.create({ model: 'atto', backend: 'cpu', threads: 2 });
  try {
    for (const f of files) reference.set(f, (await cpu.detect(f)).detections);
  } finally {
    await cpu.close();
  }
}, 300_000);

describe('Detector on the simulated TensorRT runtime', () => {
  it('64 concurrent detect() calls equal the CPU backend, with the kernel and graphs in use', async () => {
    const before = addon.simulator();
    const detector = await Detector.create({ model: 'atto', backend: 'tensorrt', engine, batch: 4 });
    expect(detector.backendName).toBe('tensorrt');
    expect(detector.description).toMatch(/TensorRT simulated engine .* GPU preprocessing/);
    const inputs = Array.from({ length: 64 }, (_, i) => files[i % files.length]!);
    const results = await Promise.all(inputs.map((f) => detector.detect(f)));
    results.forEach((r, i) => expect(r.detections).toEqual(reference.get(inputs[i]!)));
    const during = addon.simulator();
    expect(during.kernelLaunches - before.kernelLaunches).toBe(64);  // one launch per image: GPU preprocessing ran
    await detector.close();
    await settle();
    const after = addon.simulator();
    expect(after.violations).toEqual([]);
    expect(after).toMatchObject({ deviceBytes: 0, pinnedBytes: 0, streams: 0, events: 0, graphs: 0, contexts: 0, engines: 0 });
  });

  it('detectBatch with GPU preprocessing equals detect on the CPU; graphs are captured and replayed', async () => {
    const detector = await Detector.create({ model: 'atto', backend: 'tensorrt', engine, batch: 4 });
    const before = addon.simulator().graphLaunches;
    for (let round = 0; round < 3; round++) {
      const results = await detector.detectBatch(files);
      results.forEach((r, i) => expect('detections' in r ? r.detections : r).toEqual(reference.get(files[i]!)));
    }
    expect(addon.simulator().graphLaunches - before).toBeGreaterThan(0);
    await detector.close();
  });

  it('--device 1 pools: teardown on device 1, off the JS thread', async () => {
    const detector = await Detector.create({ model: 'atto', backend: 'tensorrt', engine, device: 1 });
    expect(detector.description).toMatch(/on device 1/);
    const r = await detector.detect(files[0]!);
    expect(r.detections).toEqual(reference.get(files[0]!));
    await detector.close();
    await settle();
    expect(addon.simulator().violations).toEqual([]);
    expect(addon.simulator().deviceBytes).toBe(0);
  });

  it('close during in-flight work: every call settles, close resolves after all memory is freed; close twice is fine', async () => {
    const detector = await Detector.create({ model: 'atto', backend: 'tensorrt', engine, batch: 2 });
    const work = files.map((f) => detector.detect(f).then((r) => ({ ok: r.detections }), (e: { code?: string }) => ({ error: e.code })));
    const first = detector.close();
    const second = detector.close();
    await Promise.all([first, second]);
    const outcomes = await Promise.all(work);
    for (const [i, o] of outcomes.entries()) {
      if ('ok' in o) expect(o.ok).toEqual(reference.get(files[i]!));
      else expect(o.error).toBe('ERR_CLOSED');
    }
    const stats = addon.simulator();
    expect(stats).toMatchObject({ deviceBytes: 0, pinnedBytes: 0, contexts: 0, engines: 0 });
    expect(stats.violations).toEqual([]);
    await expect(detector.detect(files[0]!)).rejects.toMatchObject({ code: 'ERR_CLOSED' });
    await detector.close();
  });

  it('detectVideo equals the CPU backend frame for frame', async () => {
    const video = path.join(SHARED, 'videos', 'traffic-1080p-20frames.mp4');
    const cpu = await Detector.create({ model: 'atto', backend: 'cpu', threads: 2 });
    const frames: { data: Uint8Array; width: number; height: number; channels: 3 }[] = [];
    const expected: unknown[] = [];
    try {
      for await (const f of cpu.detectVideo(video, { returnImage: true } as never)) {
        expected.push(f.detections);
        const image = (f as { image?: { data: Uint8Array; width: number; height: number } }).image!;
        frames.push({ data: new Uint8Array(image.data), width: image.width, height: image.height, channels: 3 });
      }
    } finally {
      await cpu.close();
    }
    expect(frames.length).toBe(20);
    const videoEngine = path.join(tmp, 'atto.video.engine');
    await recordEngine({ model: 'atto', inputs: frames, out: videoEngine, maxBatch: 4, includeValidationImage: false });
    const gpu = await Detector.create({ model: 'atto', backend: 'tensorrt', engine: videoEngine, batch: 4 });
    const got: unknown[] = [];
    try {
      for await (const f of gpu.detectVideo(video)) got.push(f.detections);
    } finally {
      await gpu.close();
    }
    expect(got).toEqual(expected);
  });
});

describe('the addon directly on the simulated runtime', () => {
  it('an engine dropped without close() is freed by the GC finalizer off the JS thread, on its device', async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await (async () => {
      const e = await addon.openEngine({ engine, device: 1, contexts: 2, frameBytes: 1 << 20 });
      new Float32Array(e.buffers(0).images!).fill(0.5);
    })();
    for (let i = 0; i < 10 && addon.simulator().engines > 0; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 50));
    }
    await settle();
    const stats = addon.simulator();
    expect(stats.engines).toBe(0);
    expect(stats.deviceBytes).toBe(0);
    expect(stats.violations).toEqual([]);
  });

  it('a slot in flight is refused, the profile is enforced, buffers are detached at close', async () => {
    const e = await addon.openEngine({ engine, contexts: 1 });
    expect(e.profile).toEqual({ min: 1, opt: 4, max: 4 });
    expect(e.tensors.find((t) => t.name === 'images')!.shape).toEqual([-1, 3, 320, 320]);
    const scores = new Float32Array(e.buffers(0).scores!);
    const pending = e.infer(0, 1);
    expect(() => e.infer(0, 1)).toThrow(/slot 0 is in flight/);
    await pending.catch(() => undefined);
    expect(() => e.infer(0, 5)).toThrow(/between 1 and 4 for batch/);
    await e.close();
    expect(scores.length).toBe(0);  // detached at close
  });

  it('outputs read before the infer settles are poison (slow streams: 20 ms per operation)', async () => {
    const { writeFileSync } = await import('node:fs');
    const { pathToFileURL } = await import('node:url');
    const { runNode } = await import('./helpers/sim.js');
    const script = path.join(tmp, 'poison.mjs');
    writeFileSync(script, `
      const { loadAddon } = await import(${JSON.stringify(pathToFileURL(path.resolve(import.meta.dirname, '..', 'dist', 'backends', 'tensorrt', 'native.js')).href)});
      const addon = loadAddon().addon;
      await addon.buildEngine({ onnx: process.argv[2], engine: process.argv[3], precision: 'fp32' });
      const e = await addon.openEngine({ engine: process.argv[3], contexts: 1, cudaGraphs: false });
      const scores = new Float32Array(e.buffers(0).scores);
      let settled = false, sawPoison = false;
      const p = e.infer(0, 1).then(() => { settled = true; });
      const until = Date.now() + 2000;
      while (!sawPoison && Date.now() < until) sawPoison = Number.isNaN(scores[0]);
      await p;
      console.log(JSON.stringify({ sawPoison, settledBeforePoison: settled, after: scores[0] }));
      await e.close();
    `);
    const r = await runNode(script, [path.join(process.env.DEIMV2_MODEL_DIR!, 'deimv2_hgnetv2_atto_coco.onnx'), path.join(tmp, 'poison.engine')], { DEIMV2_SIM_DELAY_US: '20000' });
    expect(r.code, r.stderr).toBe(0);
    const seen = JSON.parse(r.stdout) as { sawPoison: boolean; after: number };
    expect(seen.sawPoison).toBe(true);
    expect(Number.isNaN(seen.after)).toBe(false);
  });

  it('infers in flight hold no libuv pool thread: file I/O goes on with UV_THREADPOOL_SIZE=1', async () => {
    const { writeFileSync } = await import('node:fs');
    const { pathToFileURL } = await import('node:url');
    const { runNode } = await import('./helpers/sim.js');
    const script = path.join(tmp, 'pool.mjs');
    writeFileSync(script, `
      import { readFile } from 'node:fs/promises';
      const { loadAddon } = await import(${JSON.stringify(pathToFileURL(path.resolve(import.meta.dirname, '..', 'dist', 'backends', 'tensorrt', 'native.js')).href)});
      const addon = loadAddon().addon;
      await addon.buildEngine({ onnx: process.argv[2], engine: process.argv[3], precision: 'fp32' });
      const e = await addon.openEngine({ engine: process.argv[3], contexts: 4 });
      const start = Date.now();
      let inferDone = 0;
      const infers = [0, 1, 2, 3].map((slot) => e.infer(slot, 1).then(() => { inferDone = Date.now() - start; }));
      await readFile(process.argv[2]);
      const ioDone = Date.now() - start;
      await Promise.all(infers);
      console.log(JSON.stringify({ ioDone, inferDone }));
      await e.close();
    `);
    const r = await runNode(script, [path.join(process.env.DEIMV2_MODEL_DIR!, 'deimv2_hgnetv2_atto_coco.onnx'), path.join(tmp, 'pool.engine')],
      { DEIMV2_SIM_DELAY_US: '100000', UV_THREADPOOL_SIZE: '1' });
    expect(r.code, r.stderr).toBe(0);
    const t = JSON.parse(r.stdout) as { ioDone: number; inferDone: number };
    // Each infer takes >= ~5 stream operations of up to 100 ms; the file read must not wait for them.
    expect(t.ioDone).toBeLessThan(t.inferDone);
  });

  it('build reports its phases and a progress callback returning false cancels it', async () => {
    const phases: string[] = [];
    const out = path.join(tmp, 'plain.engine');
    const r = await addon.buildEngine({ onnx: path.join(process.env.DEIMV2_MODEL_DIR!, 'deimv2_hgnetv2_atto_coco.onnx'), engine: out, precision: 'fp32', maxBatch: 2 },
      (e) => { phases.push(`${e.event} ${e.phase}`); });
    expect(r).toMatchObject({ runtime: 'simulated', tensorrtVersion: 'simulated' });
    expect(phases).toEqual(expect.arrayContaining(['start Parsing ONNX', 'finish Parsing ONNX', 'start Building engine', 'finish Building engine']));
    const cancelled = path.join(tmp, 'cancelled.engine');
    await expect(addon.buildEngine({ onnx: path.join(process.env.DEIMV2_MODEL_DIR!, 'deimv2_hgnetv2_atto_coco.onnx'), engine: cancelled, precision: 'fp32' },
      (e) => e.event !== 'step')).rejects.toMatchObject({ code: 'ERR_CANCELLED', message: 'the engine build was cancelled' });
    expect((await import('node:fs')).existsSync(cancelled)).toBe(false);
  });

  it('without a recording, outputs are a deterministic function of the input', async () => {
    const out = path.join(tmp, 'plain.engine');
    const e = await addon.openEngine({ engine: out, contexts: 1 });
    const b = e.buffers(0);
    const images = new Float32Array(b.images!);
    const run = async (fill: number) => {
      images.fill(fill);
      new BigInt64Array(b.orig_target_sizes!).fill(100n);
      await e.infer(0, 1);
      return Array.from(new Float32Array(b.scores!).subarray(0, 300));
    };
    const a = await run(0.25), again = await run(0.25), other = await run(0.75);
    expect(a).toEqual(again);
    expect(a).not.toEqual(other);
    expect(a.every((v) => v >= 0 && v < 1)).toBe(true);
    await e.close();
  });

  it('a timing cache from another device is rejected with a warning and the build goes on', async () => {
    const cache = path.join(tmp, 'timing.cache');
    (await import('node:fs')).writeFileSync(cache, 'DEIMV2SIMTIMING Simulated GPU 7');
    const r = await addon.buildEngine({ onnx: path.join(process.env.DEIMV2_MODEL_DIR!, 'deimv2_hgnetv2_atto_coco.onnx'), engine: path.join(tmp, 'tc.engine'), precision: 'fp32', timingCache: cache });
    expect(r.warnings.join('\n')).toMatch(/was made on another device or runtime: starting with an empty cache/);
    const again = await addon.buildEngine({ onnx: path.join(process.env.DEIMV2_MODEL_DIR!, 'deimv2_hgnetv2_atto_coco.onnx'), engine: path.join(tmp, 'tc.engine'), precision: 'fp32', timingCache: cache });
    expect(again.warnings).toEqual([]);
  });
});
