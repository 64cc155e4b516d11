#!/usr/bin/env node
/**
 * Folder throughput of the CPU backend against the model alone, in one run (issue 2's target):
 *   1. model only, one onnxruntime session using all cores (batch 1, same tensor every call);
 *   2. model only, the per-core pool: one single-thread session per core in worker threads;
 *   3. end to end: Detector (pool layout) over ../shared/coco/val2017 repeated to --images
 *      images: read, decode, PIL-faithful resize, infer, postprocess.
 * The three are measured in interleaved rounds (1, 2, 3, 1, 2, 3, ...) and each figure is the
 * median over rounds, so that drift in the machine's speed (shared hosts) hits all three alike.
 * Usage: npm run build && node bench/detect-throughput.js [--model atto] [--images 200] [--seconds 3] [--rounds 5]
 * Target: (3) >= 1.1 x (1) and >= 0.55 x (2).
 */
import os from 'node:os';
import path from 'node:path';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';

const here = path.dirname(fileURLToPath(import.meta.url));

/** A session fed the same tensor; `measure(seconds)` returns images per second. */
async function modelRunner(modelPath, side, threads) {
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
  const feeds = {
    images: new ort.Tensor('float32', new Float32Array(3 * side * side).fill(0.45), [1, 3, side, side]),
    orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([640n, 480n]), [1, 2]),
  };
  for (let i = 0; i < 5; i++) await session.run(feeds); // warm-up, not counted
  return {
    async measure(seconds) {
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        await session.run(feeds);
        n++;
      }
      return n / ((performance.now() - t0) / 1000);
    },
    release: () => session.release(),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;

if (!isMainThread) {
  const { modelPath, side } = workerData;
  const runner = await modelRunner(modelPath, side, 1);
  parentPort.postMessage('ready');
  parentPort.on('message', async (m) => {
    if (m === 'close') return void (await runner.release(), parentPort.close());
    parentPort.postMessage(await runner.measure(m));
  });
} else {
  const { values } = parseArgs({ options: { model: { type: 'string', default: 'atto' }, images: { type: 'string', default: '200' }, seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '5' }, 'model-dir': { type: 'string' } } });
  const { Detector, resolveModel, VARIANTS } = await import('../dist/index.js');
  const modelDir = values['model-dir'] ?? process.env.DEIMV2_MODEL_DIR;
  const resolved = resolveModel(values.model, modelDir ? { modelDir } : {});
  const side = VARIANTS[resolved.variant ?? 'atto'].inputSize;
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const cores = os.availableParallelism();

  const single = await modelRunner(resolved.path, side, cores);
  const workers = await Promise.all(
    Array.from({ length: cores }, () => new Promise((resolve, reject) => {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { modelPath: resolved.path, side } });
      w.once('message', () => resolve(w));
      w.once('error', reject);
    })),
  );
  const poolMeasure = async () => {
    const rates = await Promise.all(workers.map((w) => new Promise((resolve) => {
      w.once('message', resolve);
      w.postMessage(seconds);
    })));
    return rates.reduce((a, b) => a + b, 0);
  };

  const coco = path.resolve(here, '..', '..', 'shared', 'coco', 'val2017');
  const base = readdirSync(coco).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(coco, f));
  const files = Array.from({ length: Number(values.images) }, (_, i) => base[i % base.length]);
  const detector = await Detector.create({ model: resolved.path, backend: 'cpu', layout: 'pool' });
  await detector.detectBatch(base.slice(0, cores * 2)); // warm-up
  let failed = 0;
  const endToEnd = async () => {
    const t0 = performance.now();
    const results = await detector.detectBatch(files);
    failed += results.filter((r) => 'error' in r).length;
    return files.length / ((performance.now() - t0) / 1000);
  };

  const figures = { single: [], pool: [], e2e: [] };
  for (let r = 0; r < rounds; r++) {
    figures.single.push(await single.measure(seconds));
    figures.pool.push(await poolMeasure());
    figures.e2e.push(await endToEnd());
  }
  await detector.close();
  await single.release();
  for (const w of workers) w.postMessage('close');

  const [s, p, e] = [median(figures.single), median(figures.pool), median(figures.e2e)];
  const name = resolved.variant ?? path.basename(resolved.path);
  console.log(`${name} on ${os.cpus()[0]?.model?.trim()} (${cores} cores), onnxruntime-node ${ort.env.versions?.node}, Node ${process.version}; median of ${rounds} interleaved rounds (min-max)`);
  console.log(`  model only, 1 session x ${cores} threads : ${s.toFixed(1)} img/s  (${spread(figures.single)}; ${seconds} s a round, batch 1)`);
  console.log(`  model only, ${cores} sessions x 1 thread  : ${p.toFixed(1)} img/s  (${spread(figures.pool)})`);
  console.log(`  end to end, folder (pool layout)     : ${e.toFixed(1)} img/s  (${spread(figures.e2e)}; ${files.length} COCO images a round, ${failed} failed)`);
  console.log(`  end to end / single-session model    : ${(e / s).toFixed(2)} x  (target >= 1.1)`);
  console.log(`  end to end / per-core pool model     : ${(e / p).toFixed(2)} x  (target >= 0.55)`);
}
