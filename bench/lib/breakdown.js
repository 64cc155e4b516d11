/**
 * Where the core-milliseconds of a whole `deimv2` process go, by stage: the CLI is run as a child
 * with DEIMV2_STAGE_TIMES set (src/perf/stage-times.ts), so every JavaScript thread times its
 * stages on its own CPU clock and reports at exit; the rest is attributed by thread:
 *   - decode (libvips threads): sharp's decoding threads (named "libvips worker");
 *   - decode / encode (ffmpeg): the video decoder and x264 encoder children (their CPU as reaped,
 *     split between them as sampled every 50 ms);
 *   - other JS, main / workers: what a JavaScript thread did outside its timed stages (module
 *     loading, message (de)serialisation of pixels and results, the event loop, GC on the thread);
 *   - runtime threads: the rest of the process (V8's GC and compiler threads, libuv's pool:
 *     file reads and sharp's part outside libvips's threads).
 * Each core's idle share is read from /proc/stat over the run: on a shared machine other
 * processes use the cores too, so a busy core is not necessarily busy with this run.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

function coreTimes() {
  return readFileSync('/proc/stat', 'latin1').split('\n').filter((l) => /^cpu\d+ /.test(l)).map((l) => {
    const v = l.trim().split(/\s+/).slice(1).map(Number);
    return { idle: v[3] + (v[4] ?? 0), total: v.reduce((a, b) => a + b, 0) };
  });
}

/**
 * Runs `argv` (node arguments) once with stage accounting; returns the stages (core-ms), the
 * wall time, the process's and its children's CPU, and each core's idle share over the run.
 */
export function measureBreakdown(argv, { cwd, tmpDir, name }) {
  const file = path.join(tmpDir, `stages-${Date.now()}-${Math.random().toString(36).slice(2)}.jsonl`);
  rmSync(file, { force: true });
  const cores0 = coreTimes();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { cwd, encoding: 'utf8', env: { ...process.env, DEIMV2_STAGE_TIMES: file }, maxBuffer: 1 << 28 });
  const wallMs = performance.now() - t0;
  const cores1 = coreTimes();
  if (r.status !== 0) throw new Error(`${name}: exit ${r.status}: ${(r.stderr || '').split('\n').slice(-3).join(' ')}`);
  const records = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const main = records.find((x) => x.main);
  if (!main) throw new Error(`${name}: the main thread left no stage record`);
  const stages = new Map();
  const add = (k, ms) => stages.set(k, (stages.get(k) ?? 0) + ms);
  let jsThreadsMs = 0;
  for (const rec of records) {
    let timed = 0;
    for (const [k, v] of Object.entries(rec.stages)) {
      add(k, v.cpuMs);
      timed += v.cpuMs;
    }
    add(rec.main ? 'other JS, main thread' : 'other JS, worker threads', Math.max(0, rec.threadCpuMs - timed));
    jsThreadsMs += rec.threadCpuMs;
  }
  const vips = main.threads.filter((t) => /vips/i.test(t.name)).reduce((a, t) => a + t.cpuMs, 0);
  if (vips > 0) add('decode (libvips threads)', vips);
  add('runtime threads (GC, compiler, libuv)', Math.max(0, main.processCpuMs - jsThreadsMs - vips));
  const sampled = main.children.reduce((a, c) => a + c.cpuMs, 0);
  for (const c of main.children) add(c.role, sampled > 0 ? (c.cpuMs / sampled) * main.childrenCpuMs : 0);
  const idle = cores1.map((c, i) => {
    const dt = c.total - cores0[i].total;
    return dt > 0 ? (c.idle - cores0[i].idle) / dt : 0;
  });
  return {
    name,
    wallMs,
    cpuMs: main.processCpuMs + main.childrenCpuMs,
    stages: [...stages].map(([stage, ms]) => ({ stage, ms })).filter((s) => s.ms >= 0.05).sort((a, b) => b.ms - a.ms),
    idle,
    threads: records.length,
  };
}

/** The breakdown as text: one table per case, `units` (images, frames) for the per-unit column. */
export function breakdownTable(b, units, unitName) {
  const lines = [];
  const cores = b.idle.length;
  lines.push(`${b.name}: wall ${(b.wallMs / 1000).toFixed(2)} s, CPU ${(b.cpuMs / 1000).toFixed(2)} core-s (${(b.cpuMs / b.wallMs).toFixed(2)} of ${cores} cores), ${b.threads} JS threads; idle per core (whole machine): ${b.idle.map((x, i) => `cpu${i} ${(100 * x).toFixed(0)}%`).join(', ')}`);
  lines.push(`| stage | core-ms | core-ms per ${unitName} | share |`);
  lines.push('|---|---:|---:|---:|');
  for (const s of b.stages) lines.push(`| ${s.stage} | ${s.ms.toFixed(0)} | ${(s.ms / units).toFixed(2)} | ${((100 * s.ms) / b.cpuMs).toFixed(1)}% |`);
  return lines.join('\n');
}
