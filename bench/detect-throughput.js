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
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { modelRunner, perCorePool } from './lib/model-rate.js';

const here = path.dirname(fileURLToPath(import.meta.url));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;

const { values } = parseArgs({ options: { model: { type: 'string', default: 'atto' }, images: { type: 'string', default: '200' }, seconds: { type: 'string', default: '3' }, rounds: { type: 'string', default: '5' }, 'model-dir': { type: 'string' } } });
const { Detector, resolveModel, VARIANTS } = await import('../dist/index.js');
const modelDir = values['model-dir'] ?? process.env.DEIMV2_MODEL_DIR;
const resolved = resolveModel(values.model, modelDir ? { modelDir } : {});
const side = VARIANTS[resolved.variant ?? 'atto'].inputSize;
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const cores = os.availableParallelism();

const single = await modelRunner(resolved.path, side, cores);
const pool = await perCorePool(resolved.path, side, cores);

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
  figures.pool.push(await pool.measure(seconds));
  figures.e2e.push(await endToEnd());
}
await detector.close();
await single.release();
await pool.close();

const [s, p, e] = [median(figures.single), median(figures.pool), median(figures.e2e)];
const name = resolved.variant ?? path.basename(resolved.path);
console.log(`${name} on ${os.cpus()[0]?.model?.trim()} (${cores} cores), onnxruntime-node ${ort.env.versions?.node}, Node ${process.version}; median of ${rounds} interleaved rounds (min-max)`);
console.log(`  model only, 1 session x ${cores} threads : ${s.toFixed(1)} img/s  (${spread(figures.single)}; ${seconds} s a round, batch 1)`);
console.log(`  model only, ${cores} sessions x 1 thread  : ${p.toFixed(1)} img/s  (${spread(figures.pool)})`);
console.log(`  end to end, folder (pool layout)     : ${e.toFixed(1)} img/s  (${spread(figures.e2e)}; ${files.length} COCO images a round, ${failed} failed)`);
console.log(`  end to end / single-session model    : ${(e / s).toFixed(2)} x  (target >= 1.1)`);
console.log(`  end to end / per-core pool model     : ${(e / p).toFixed(2)} x  (target >= 0.55)`);
