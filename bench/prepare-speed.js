#!/usr/bin/env node
/**
 * How long `deimv2 prepare` takes (target: under 2 s for Femto), per mode, median of runs.
 * Includes reading, decoding, rewriting, encoding and writing the file.
 *
 *   npm run build && node bench/prepare-speed.js [femto|atto|path.onnx] [--runs N]
 *
 * Needs DEIMV2_MODEL_DIR (or ./models) for variant names. Timings on a busy machine are noisy:
 * rerun when it is quiet.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { prepareModel } = await import(path.join(ROOT, 'dist/prepare/index.js'));

const args = process.argv.slice(2);
const runsFlag = args.indexOf('--runs');
const runs = runsFlag >= 0 ? Number(args.splice(runsFlag, 2)[1]) : 5;
const model = args[0] ?? 'femto';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-prepare-bench-'));

const modes = [
  ['GridSample rewrite (fp32)', {}],
  ['mixed FP16', { precision: 'fp16' }],
  ['FP16 emulation', { emulateFp16: true }],
];
console.log(`deimv2 prepare ${model}: median of ${runs} runs (first run is warm-up, not counted)`);
for (const [label, options] of modes) {
  const times = [];
  for (let i = 0; i <= runs; i++) {
    const t0 = performance.now();
    await prepareModel(model, { ...options, out: path.join(tmp, 'out.onnx') });
    if (i > 0) times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(`  ${label.padEnd(28)} median ${median.toFixed(0)} ms  (min ${times[0].toFixed(0)}, max ${times.at(-1).toFixed(0)})  ${median < 2000 ? 'OK' : 'over the 2 s target'}`);
}
rmSync(tmp, { recursive: true, force: true });
