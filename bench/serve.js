#!/usr/bin/env node
/**
 * `deimv2 serve` measured from outside (the built CLI as a child process, its HTTP API and /metrics):
 *
 *   1. Saturation: 1, 2, 4 and 8 file streams of the same clip (the car clip played --loops times),
 *      as fast as they go, on the CPU backend: aggregate FPS (processed frames of all streams per
 *      second while every stream runs) against the per-core pool's model-only rate (one
 *      single-thread onnxruntime session per core, same tensor, bench/lib/model-rate.js) measured in
 *      the same run, before the first row and after each (a row is compared with the mean of the two
 *      around it, so a shared machine's drift hits both). Target: >= 0.9 x.
 *   2. Batch fill on the SIMULATED TensorRT runtime (DEIMV2_GPU_RUNTIME=simulated, an engine recorded
 *      from the clip's frames): mean batch size from deimv2_inference_batch_size over --batch.
 *      The simulated runtime has no GPU's speed: its FPS is no GPU figure and is not reported as one.
 *   3. Live: --cameras RTSP cameras (GStreamer's rtsp-server on loopback, test/helpers/rtsp-server.py,
 *      one a camera, serving the clip re-encoded at --camera-fps and looped to outlast the run) for
 *      --live-seconds after a warm-up: frames dropped, p95 frame latency (deimv2_frame_latency_seconds,
 *      decoded -> event sent, over the measured window), resident memory of the service process
 *      sampled every 5 s (its ffmpeg children apart), growth = the last minute's median against the
 *      first minute's (a quarter of the run each when it is shorter than 4 minutes).
 *      Targets: 0 dropped, p95 <= 150 ms, growth < 5 %.
 *
 * Usage: npm run build && node bench/serve.js [--model atto] [--streams 1,2,4,8] [--loops 2]
 *          [--batch 8] [--cameras 4] [--camera-fps 10] [--live-seconds 600] [--warmup-seconds 20]
 *          [--pool-seconds 5] [--skip saturation,sim,live] [--out bench/results]
 * Prints a table and writes bench/results/<date>-<host>-serve.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { machineInfo } from './lib/machine.js';
import { perCorePool } from './lib/model-rate.js';
import { counter, cpuSampler, getJson, histogram, histogramDelta, histogramQuantile, rss, sleep, startService } from './lib/service.js';
import { startCamera } from './lib/rtsp.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'atto' },
    'model-dir': { type: 'string' },
    clip: { type: 'string', default: path.resolve(root, '../shared/videos/car-detection.mp4') },
    streams: { type: 'string', default: '1,2,4,8' },
    loops: { type: 'string', default: '2' },
    batch: { type: 'string', default: '8' },
    cameras: { type: 'string', default: '4' },
    'camera-fps': { type: 'string', default: '10' },
    'live-seconds': { type: 'string', default: '600' },
    'warmup-seconds': { type: 'string', default: '20' },
    'pool-seconds': { type: 'string', default: '5' },
    skip: { type: 'string', default: '' },
    out: { type: 'string', default: path.join(root, 'bench/results') },
  },
});
const int = (name, min = 1) => {
  const v = Number(args[name]);
  if (!Number.isInteger(v) || v < min) {
    console.error(`bench/serve.js: --${name} must be an integer >= ${min}, got ${args[name]}`);
    process.exit(2);
  }
  return v;
};
const streamCounts = args.streams.split(',').map((s) => Number(s.trim()));
if (streamCounts.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error(`bench/serve.js: --streams takes positive integers, got ${args.streams}`);
  process.exit(2);
}
const loops = int('loops');
const batch = int('batch');
const cameras = int('cameras');
const cameraFps = int('camera-fps');
const liveSeconds = int('live-seconds');
const warmupSeconds = int('warmup-seconds', 0);
const poolSeconds = int('pool-seconds');
const skip = new Set(args.skip.split(',').map((s) => s.trim()).filter(Boolean));

const dist = await import(path.join(root, 'dist/index.js'));
const modelDir = args['model-dir'] ?? process.env.DEIMV2_MODEL_DIR ?? path.resolve(root, '../shared/models');
const resolved = dist.resolveModel(args.model, { modelDir });
const side = dist.VARIANTS[resolved.variant ?? 'atto'].inputSize;
const cores = os.availableParallelism();
const env = { DEIMV2_MODEL_DIR: modelDir };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-bench-serve-'));
const log = (s) => process.stderr.write(`bench/serve: ${s}\n`);
const ffmpeg = (...a) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...a], { stdio: ['ignore', 'ignore', 'pipe'] });

// The clip played `loops` times (stream copy), inside a folder the service is allowed to read.
const clip = path.join(tmp, 'clip.mp4');
ffmpeg('-stream_loop', String(loops - 1), '-i', args.clip, '-an', '-c', 'copy', clip);
const clipFrames = Number(execFileSync('ffprobe', ['-v', 'error', '-count_packets', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_packets', '-of', 'csv=p=0', clip], { encoding: 'utf8' }).trim());

const fileConfig = (n) => {
  const file = path.join(tmp, `streams-${n}.json`);
  writeFileSync(file, JSON.stringify({ streams: Array.from({ length: n }, (_, i) => ({ id: `file${i}`, source: clip })) }));
  return file;
};

/**
 * Runs n file streams to their end. FPS = frames processed by all streams between the first poll
 * where every stream has a frame and the first poll where one has ended (all run at once there).
 */
async function fileStreams(n, serviceArgs, serviceEnv) {
  const service = await startService(['--config', fileConfig(n), '--allow-dir', tmp, '--model', resolved.path, ...serviceArgs], { env: { ...env, ...serviceEnv } });
  const cpu = cpuSampler(service.pid, cores);
  try {
    let start, end, last;
    const t0 = Date.now();
    for (;;) {
      const { streams } = await getJson(`${service.base}/v1/streams`);
      const now = performance.now();
      const frames = streams.reduce((a, s) => a + (s.frames ?? 0), 0);
      last = streams;
      const failed = streams.find((s) => s.state === 'failed');
      if (failed) throw new Error(`stream ${failed.id} failed: ${JSON.stringify(failed.lastError)}`);
      cpu.sample();
      if (!start && streams.length === n && streams.every((s) => s.frames > 0)) start = { now, frames, cpu: cpu.read() };
      if (start && !end && streams.some((s) => s.state === 'ended')) end = { now, frames, cpu: cpu.read() };
      if (streams.every((s) => s.state === 'ended')) break;
      if (Date.now() - t0 > 30 * 60_000) throw new Error('file streams did not end in 30 minutes');
      await sleep(100);
    }
    const metrics = await (await fetch(`${service.base}/metrics`)).text();
    const batches = histogram(metrics, 'deimv2_inference_batch_size');
    const total = last.reduce((a, s) => a + s.frames, 0);
    const dropped = last.reduce((a, s) => a + (s.dropped ?? 0), 0);
    return {
      streams: n,
      fps: end && end.now > start.now ? ((end.frames - start.frames) * 1000) / (end.now - start.now) : NaN,
      frames: total,
      expectedFrames: n * clipFrames,
      dropped,
      meanBatch: batches.count ? batches.sum / batches.count : NaN,
      // Core-ms per frame over the same window, by part (Linux /proc; see cpuSampler).
      coreMsPerFrame: end && end.frames > start.frames ? Object.fromEntries(Object.keys(end.cpu).map((k) => [k, (end.cpu[k] - start.cpu[k]) / (end.frames - start.frames)])) : undefined,
      batches: batches.count,
      exit: await service.stop(),
    };
  } finally {
    await service.stop();
  }
}

const results = { saturation: [], pool: [], sim: [], live: undefined };
const started = Date.now();
log(`${path.basename(args.clip)} x ${loops} = ${clipFrames} frames a stream; ${cores} cores; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

// --- 1. saturation on the CPU ------------------------------------------------------------------
if (!skip.has('saturation')) {
  const measurePool = async () => {
    const pool = await perCorePool(resolved.path, side, cores);
    try {
      return await pool.measure(poolSeconds);
    } finally {
      await pool.close();
    }
  };
  // The pool is measured before each row and after the last: a row's reference is the mean of the
  // measurements on either side of it, so that drift of a shared machine hits both alike.
  results.pool.push(await measurePool());
  log(`per-core pool, model only: ${results.pool.at(-1).toFixed(1)} FPS`);
  for (const n of streamCounts) {
    const r = await fileStreams(n, ['--backend', 'cpu'], {});
    results.pool.push(await measurePool());
    r.poolFps = (results.pool.at(-2) + results.pool.at(-1)) / 2;
    r.ratio = r.fps / r.poolFps;
    // The model alone costs cores x 1000 / poolFps core-ms a frame; what the service spends beyond it bounds the ratio.
    r.modelCoreMs = (cores * 1000) / r.poolFps;
    results.saturation.push(r);
    log(`${n} file stream(s): ${r.fps.toFixed(1)} FPS (${r.ratio.toFixed(2)} x the pool's ${r.poolFps.toFixed(1)}), ${r.frames}/${r.expectedFrames} frames, ${r.dropped} dropped, mean batch ${r.meanBatch.toFixed(2)}`);
    log(`per-core pool, model only: ${results.pool.at(-1).toFixed(1)} FPS`);
  }
}

// --- 2. batch fill on the simulated TensorRT runtime -------------------------------------------
if (!skip.has('sim')) {
  const simEnv = { DEIMV2_GPU_RUNTIME: 'simulated', DEIMV2_SIM_DELAY_US: '100', DEIMV2_SIM_SEED: '7' };
  const engine = path.join(tmp, 'clip.sim.engine');
  execFileSync(process.execPath, [path.join(root, 'bench/lib/record-clip.js'), resolved.path, args.clip, engine, String(batch)], { env: { ...process.env, ...env, ...simEnv }, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const n of streamCounts) {
    const r = await fileStreams(n, ['--backend', 'tensorrt', '--engine', engine, '--batch', String(batch)], simEnv);
    results.sim.push({ ...r, fill: r.meanBatch / batch });
    log(`simulated TensorRT, ${n} file stream(s), --batch ${batch}: mean batch ${r.meanBatch.toFixed(2)} (${r.batches} calls), ${r.frames}/${r.expectedFrames} frames`);
  }
}

// --- 3. live RTSP cameras ----------------------------------------------------------------------
if (!skip.has('live')) {
  // The clip at the cameras' rate, then looped (stream copy) to outlast warm-up and run.
  const once = path.join(tmp, `clip-${cameraFps}fps.mp4`);
  ffmpeg('-i', args.clip, '-an', '-vf', `fps=${cameraFps}`, '-c:v', 'libx264', '-preset', 'veryfast', '-g', String(cameraFps), '-bf', '0', once);
  const onceSeconds = Number(execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'format=duration', '-of', 'csv=p=0', once], { encoding: 'utf8' }).trim());
  const cameraClip = path.join(tmp, `cameras-${cameraFps}fps.mp4`);
  ffmpeg('-stream_loop', String(Math.ceil((liveSeconds + warmupSeconds + 180) / onceSeconds)), '-i', once, '-c', 'copy', cameraClip);
  const servers = [];
  let service;
  try {
    for (let i = 0; i < cameras; i++) servers.push(await startCamera(cameraClip));
    const config = path.join(tmp, 'cameras.json');
    writeFileSync(config, JSON.stringify({ streams: servers.map((c, i) => ({ id: `cam${i}`, source: c.url })) }));
    service = await startService(['--config', config, '--model', resolved.path, '--backend', 'cpu'], { env });
    const scrape = async () => {
      const [list, metrics] = await Promise.all([getJson(`${service.base}/v1/streams`), fetch(`${service.base}/metrics`).then((r) => r.text())]);
      return {
        at: performance.now(),
        frames: list.streams.reduce((a, s) => a + (s.frames ?? 0), 0),
        dropped: list.streams.reduce((a, s) => a + (s.dropped ?? 0), 0),
        droppedMetric: counter(metrics, 'deimv2_stream_dropped_frames_total'),
        reconnects: counter(metrics, 'deimv2_stream_reconnects_total'),
        latency: histogram(metrics, 'deimv2_frame_latency_seconds'),
        states: list.streams.map((s) => s.state),
      };
    };
    const t0 = Date.now();
    while (!(await scrape()).states.every((s) => s === 'running')) {
      if (Date.now() - t0 > 60_000) throw new Error(`cameras not running after 60 s:\n${service.log()}`);
      await sleep(500);
    }
    await sleep(warmupSeconds * 1000);
    const first = await scrape();
    const samples = [];
    const end = Date.now() + liveSeconds * 1000;
    while (Date.now() < end) {
      samples.push({ t: (Date.now() - (end - liveSeconds * 1000)) / 1000, ...rss(service.pid) });
      await sleep(Math.min(5000, Math.max(0, end - Date.now())));
    }
    const last = await scrape();
    const window = histogramDelta(last.latency, first.latency);
    const minute = Math.min(60, liveSeconds / 4);
    const medianOf = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const head = samples.filter((s) => s.t <= minute).map((s) => s.serviceMiB);
    const tail = samples.filter((s) => s.t >= liveSeconds - minute).map((s) => s.serviceMiB);
    const seconds = (last.at - first.at) / 1000;
    results.live = {
      cameras, cameraFps, seconds, warmupSeconds,
      fps: (last.frames - first.frames) / seconds,
      dropped: last.dropped - first.dropped,
      droppedMetric: last.droppedMetric - first.droppedMetric,
      droppedInWarmup: first.dropped,
      reconnects: last.reconnects - first.reconnects,
      latencyP50Ms: histogramQuantile(window, 0.5) * 1000,
      latencyP95Ms: histogramQuantile(window, 0.95) * 1000,
      latencyMeanMs: (window.sum / window.count) * 1000,
      latencyCount: window.count,
      rssStartMiB: medianOf(head),
      rssEndMiB: medianOf(tail),
      rssGrowth: medianOf(tail) / medianOf(head) - 1,
      childrenRssEndMiB: samples.at(-1).childrenMiB,
      rssSamples: samples,
      exit: await service.stop(),
    };
    const l = results.live;
    log(`live: ${cameras} cameras at ${cameraFps} FPS for ${seconds.toFixed(0)} s: ${l.fps.toFixed(1)} FPS, ${l.dropped} dropped, p95 ${l.latencyP95Ms.toFixed(1)} ms, RSS ${l.rssStartMiB.toFixed(1)} -> ${l.rssEndMiB.toFixed(1)} MiB`);
  } finally {
    await service?.stop();
    await Promise.all(servers.map((c) => c.stop()));
  }
}
rmSync(tmp, { recursive: true, force: true });

// --- report ------------------------------------------------------------------------------------
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '-');
const machine = machineInfo({ tensorrt: dist.tensorrtAvailability(), ffmpeg: dist.ffmpegInfo() });
const lines = [`deimv2 serve: ${resolved.variant ?? path.basename(resolved.path)} on ${machine.cpu} (${cores} cores), Node ${machine.node}, onnxruntime-node ${machine.onnxruntime}; load at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`, ''];
if (results.saturation.length) {
  lines.push(`Saturation, CPU backend: ${clipFrames}-frame file streams as fast as they go; per-core pool model-only FPS measured between the rows: ${results.pool.map(f1).join(', ')}`, '',
    '| file streams | aggregate FPS | pool model-only FPS (around the row) | x pool (target >= 0.9) | frames / expected | dropped | mean batch |', '|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results.saturation) lines.push(`| ${r.streams} | ${f1(r.fps)} | ${f1(r.poolFps)} | ${f2(r.ratio)} | ${r.frames} / ${r.expectedFrames} | ${r.dropped} | ${f2(r.meanBatch)} |`);
  lines.push('');
  if (results.saturation.some((r) => r.coreMsPerFrame)) {
    // Where a frame's CPU goes while the streams run: the model alone (from the pool's rate) against
    // the pool workers (model + resize + tensor + postprocess), the main thread, the process's
    // other threads and the ffmpeg decoders; the model's share of the total is the ratio's ceiling.
    lines.push('Core-ms per frame in the same windows (/proc): the model alone at the pool\'s rate, then the service by part; model / total bounds the ratio', '',
      '| file streams | model alone | pool workers | main thread | other threads | ffmpeg decoders | total | model / total |', '|---:|---:|---:|---:|---:|---:|---:|---:|');
    for (const r of results.saturation) {
      const c = r.coreMsPerFrame;
      if (!c) continue;
      const total = c.workers + c.main + c.runtime + c.ffmpeg;
      lines.push(`| ${r.streams} | ${f2(r.modelCoreMs)} | ${f2(c.workers)} | ${f2(c.main)} | ${f2(c.runtime)} | ${f2(c.ffmpeg)} | ${f2(total)} | ${f2(r.modelCoreMs / total)} |`);
    }
    lines.push('');
  }
}
if (results.sim.length) {
  lines.push(`Batch fill, SIMULATED TensorRT runtime (no GPU; not a GPU figure), --batch ${batch}:`, '',
    '| file streams | mean batch | fill | batched calls | frames / expected |', '|---:|---:|---:|---:|---:|');
  for (const r of results.sim) lines.push(`| ${r.streams} | ${f2(r.meanBatch)} | ${Math.round(r.fill * 100)}% | ${r.batches} | ${r.frames} / ${r.expectedFrames} |`);
  lines.push('');
}
if (results.live) {
  const l = results.live;
  lines.push(`Live, CPU backend: ${l.cameras} RTSP cameras at ${l.cameraFps} FPS, ${f1(l.seconds)} s measured after ${l.warmupSeconds} s warm-up`, '',
    '| FPS (all cameras) | dropped (target 0) | p50 / p95 latency ms (target p95 <= 150) | RSS MiB first / last minute | growth (target < 5%) | reconnects |', '|---:|---:|---:|---:|---:|---:|',
    `| ${f1(l.fps)} | ${l.dropped} | ${f1(l.latencyP50Ms)} / ${f1(l.latencyP95Ms)} | ${f1(l.rssStartMiB)} / ${f1(l.rssEndMiB)} | ${f1(l.rssGrowth * 100)}% | ${l.reconnects} |`, '');
}
console.log(lines.join('\n'));

const date = new Date().toISOString().slice(0, 10);
mkdirSync(args.out, { recursive: true });
const out = path.join(args.out, `${date}-${machine.host.replace(/[^A-Za-z0-9._-]/g, '_')}-serve.json`);
writeFileSync(out, JSON.stringify({
  date: new Date().toISOString(), machine, durationS: Math.round((Date.now() - started) / 1000),
  options: { model: resolved.path, clip: args.clip, loops, clipFrames, streams: streamCounts, batch, cameras, cameraFps, liveSeconds, warmupSeconds, poolSeconds, skip: [...skip] },
  notes: 'saturation FPS: frames of all streams per second while all run (GET /v1/streams polled every 100 ms); pool: model-only rate of one single-thread session per core (bench/lib/model-rate.js), before the first row and after each; each row against the mean of the two around it. sim: DEIMV2_GPU_RUNTIME=simulated, no GPU figure. live: latency = deimv2_frame_latency_seconds over the measured window (histogram_quantile), RSS of the service process (ffmpeg children apart).',
  poolModelOnlyFps: results.pool, saturation: results.saturation, simulated: results.sim, live: results.live,
}, null, 2) + '\n');
console.log(`wrote ${path.relative(process.cwd(), out)}`);
