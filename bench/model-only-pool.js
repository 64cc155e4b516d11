#!/usr/bin/env node
/**
 * The whole-process yardstick for a folder or a video: the per-core pool's model alone, as one
 * process would run it: one worker thread per core, each loading onnxruntime-node with a
 * single-thread session of the model and running its share of --images inferences on one
 * preprocessed tensor (no file reading, decoding, resizing, postprocessing or output). Start-up is
 * included, as it is in a `deimv2 detect` process timed from outside; pair the two under a
 * whole-process timer (e.g. /usr/bin/time, or hyperfine) and divide the walls.
 *
 *   node bench/model-only-pool.js [--images 632] [--model atto] [--model-dir DIR]
 */
import os from 'node:os';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

if (!isMainThread) {
  const { modelPath, side, runs } = workerData;
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  const feeds = {
    images: new ort.Tensor('float32', new Float32Array(3 * side * side).fill(0.45), [1, 3, side, side]),
    orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([640n, 480n]), [1, 2]),
  };
  for (let i = 0; i < runs; i++) await session.run(feeds);
  await session.release();
  parentPort.postMessage(runs);
} else {
  const { values } = parseArgs({ options: { images: { type: 'string', default: '632' }, model: { type: 'string', default: 'atto' }, 'model-dir': { type: 'string' } } });
  const { resolveModel, VARIANTS } = await import('../dist/index.js');
  const modelDir = values['model-dir'] ?? process.env.DEIMV2_MODEL_DIR;
  const resolved = resolveModel(values.model, modelDir ? { modelDir } : {});
  const side = VARIANTS[resolved.variant ?? 'atto'].inputSize;
  const total = Number(values.images);
  const cores = os.availableParallelism();
  const t0 = performance.now();
  const done = await Promise.all(Array.from({ length: cores }, (_, i) => new Promise((resolve, reject) => {
    const runs = Math.floor(total / cores) + (i < total % cores ? 1 : 0);
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: { modelPath: resolved.path, side, runs } });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  const s = (performance.now() - t0) / 1000;
  console.log(`${done.reduce((a, b) => a + b, 0)} inferences on ${cores} single-thread sessions in ${s.toFixed(2)} s (start-up included): ${(total / s).toFixed(1)} img/s`);
}
