/**
 * The per-stage CPU accounting (src/perf/stage-times.ts, DEIMV2_STAGE_TIMES) and the breakdown
 * bench/breakdown.js prints from it: each thread's stages on its own CPU clock, an enclosing stage
 * without the stages timed inside it, one record per thread at exit; nothing when unset.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODEL_DIR, ROOT } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

const script = `
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { timeStage, timeStageAsync } from ${JSON.stringify(path.join(ROOT, 'dist/perf/stage-times.js'))};
import { readFileSync } from 'node:fs';
// Spins until this thread has run for ms of CPU (a busy machine would make a wall-clock spin shorter).
const cpu = () => Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ')[0]) / 1e6;
const spin = (ms) => { const t = cpu(); while (cpu() - t < ms); };
if (isMainThread) {
  await timeStageAsync('outer', async () => {
    spin(60);
    timeStage('inner', () => spin(40));
    await new Promise((r) => setTimeout(r, 50)); // idle: no CPU
  });
  const w = new Worker(new URL(import.meta.url));
  await new Promise((r) => w.on('exit', r));
} else {
  timeStage('in worker', () => spin(30));
}
`;

function run(env: Record<string, string>) {
  const dir = tempDir('deimv2-stages-');
  const file = path.join(dir, 'stages.jsonl');
  const entry = path.join(dir, 'stages.mjs');
  writeFileSync(entry, script);
  execFileSync(process.execPath, [entry], { env: { ...process.env, ...env, ...(env.DEIMV2_STAGE_TIMES === '' ? {} : { DEIMV2_STAGE_TIMES: file }) } });
  return file;
}

describe('stage times', () => {
  it('times each stage on its thread, leaves nested stages out of the enclosing one, one record per thread', () => {
    const file = run({ DEIMV2_STAGE_TIMES: 'x' });
    const records = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(records).toHaveLength(2);
    const main = records.find((r) => r.main)!;
    const worker = records.find((r) => !r.main)!;
    expect(main.stages.outer.cpuMs).toBeGreaterThan(59);
    expect(main.stages.outer.cpuMs).toBeLessThan(95); // 60 ms of its own, not the inner 40 nor the idle 50
    expect(main.stages.outer.wallMs).toBeGreaterThan(145);
    expect(main.stages.inner.cpuMs).toBeGreaterThan(39);
    expect(main.threadCpuMs).toBeGreaterThan(main.stages.outer.cpuMs + main.stages.inner.cpuMs);
    expect(main.threads.length).toBeGreaterThan(1);
    expect(main.processCpuMs).toBeGreaterThan(main.threadCpuMs - 1);
    expect(worker.stages['in worker'].cpuMs).toBeGreaterThan(29);
    expect(worker.tid).not.toBe(main.tid);
  });

  it('writes nothing when DEIMV2_STAGE_TIMES is unset', () => {
    const file = run({ DEIMV2_STAGE_TIMES: '' });
    expect(existsSync(file)).toBe(false);
  });

  it('bench/breakdown.js prints the stages of a whole deimv2 run (one image)', () => {
    const out = execFileSync(process.execPath, [path.join(ROOT, 'bench/breakdown.js'), '--cases', 'one'], { encoding: 'utf8', env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR } });
    expect(out).toMatch(/one image \(deimv2 detect example\.jpg\): wall [\d.]+ s, CPU [\d.]+ core-s .* idle per core \(whole machine\): cpu0 \d+%/);
    for (const stage of ['infer', 'resize\\+tensor', 'decode \\(libvips threads\\)', 'other JS, main thread']) expect(out).toMatch(new RegExp(`\\| ${stage} \\| \\d+ \\| [\\d.]+ \\| [\\d.]+% \\|`));
  });
});
