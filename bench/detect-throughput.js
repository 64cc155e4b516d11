#!/usr/bin/env node
/**
 * Folder throughput of the CPU backend against the model alone, in one run (issue 2's target):
 *   1. model only, one onnxruntime session using all cores (batch 1, same tensor every call);
 *   2. model only, the per-core pool: one single-thread session per core in worker threads;
 *   3. end to end: Detector (pool layout) over ../shared/coco/val2017 repeated to --images
 *      images: read, decode, PIL-faithful resize, infer, postprocess.
 * Usage: npm run build && node bench/detect-throughput.js [--model atto] [--images 400] [--seconds 8]
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

async function modelOnly(modelPath, side, threads, seconds) {
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
  const images = new ort.Tensor('float32', new Float32Array(3 * side * side).fill(0.45), [1, 3, side, side]);
  const sizes = new ort.Tensor('int64', BigInt64Array.from([640n, 480n]), [1, 2]);
  const feeds = { images, orig_target_sizes: sizes };
  for (let i = 0; i < 5; i++) await session.run(feeds); // warm-up, not counted
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await session.run(feeds);
    n++;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  await session.release();
  return rate;
}

if (!isMainThread) {
  const { modelPath, side, seconds } = workerData;
  parentPort.postMessage(await modelOnly(modelPath, side, 1, seconds));
} else {
  const { values } = parseArgs({ options: { model: { type: 'string', default: 'atto' }, images: { type: 'string', default: '400' }, seconds: { type: 'string', default: '8' }, 'model-dir': { type: 'string' } } });
  const { Detector, resolveModel, VARIANTS } = await import('../dist/index.js');
  const modelDir = values['model-dir'] ?? process.env.DEIMV2_MODEL_DIR;
  const resolved = resolveModel(values.model, modelDir ? { modelDir } : {});
  const side = VARIANTS[resolved.variant ?? 'atto'].inputSize;
  const seconds = Number(values.seconds);
  const cores = os.availableParallelism();

  const single = await modelOnly(resolved.path, side, cores, seconds);
  const poolRates = await Promise.all(
    Array.from({ length: cores }, () => new Promise((resolve, reject) => {
      const w = new Worker(fileURLToPath(import.meta.url), { workerData: { modelPath: resolved.path, side, seconds } });
      w.once('message', resolve);
      w.once('error', reject);
    })),
  );
  const pool = poolRates.reduce((a, b) => a + b, 0);

  const coco = path.resolve(here, '..', '..', 'shared', 'coco', 'val2017');
  const base = readdirSync(coco).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(coco, f));
  const files = Array.from({ length: Number(values.images) }, (_, i) => base[i % base.length]);
  const detector = await Detector.create({ model: resolved.path, backend: 'cpu', layout: 'pool' });
  await detector.detectBatch(base.slice(0, cores * 2)); // warm-up
  const t0 = performance.now();
  const results = await detector.detectBatch(files);
  const e2e = files.length / ((performance.now() - t0) / 1000);
  await detector.close();
  const failed = results.filter((r) => 'error' in r).length;

  const name = resolved.variant ?? path.basename(resolved.path);
  console.log(`${name} on ${os.cpus()[0]?.model?.trim()} (${cores} cores), onnxruntime-node ${ort.env.versions?.node}, Node ${process.version}`);
  console.log(`  model only, 1 session x ${cores} threads : ${single.toFixed(1)} img/s  (${seconds} s, batch 1)`);
  console.log(`  model only, ${cores} sessions x 1 thread  : ${pool.toFixed(1)} img/s  (${poolRates.map((r) => r.toFixed(1)).join(' + ')})`);
  console.log(`  end to end, folder (pool layout)     : ${e2e.toFixed(1)} img/s  (${files.length} COCO images, ${failed} failed)`);
  console.log(`  end to end / single-session model    : ${(e2e / single).toFixed(2)} x  (target >= 1.1)`);
  console.log(`  end to end / per-core pool model     : ${(e2e / pool).toFixed(2)} x  (target >= 0.55)`);
}
