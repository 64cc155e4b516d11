#!/usr/bin/env node
/**
 * Queue mode against local detection on one machine, in one run (issue 11's targets):
 *   1. `deimv2 detect <folder>`: its own "end to end" images/s (model loaded, then the folder);
 *   2. one `deimv2 worker` (same model and layout) fed the same images through a real local
 *      redis-server: jobs / (last job finished - first job taken), from BullMQ's job timestamps;
 *   3. two workers on the same queue, each with half the cores (--threads cores/2): their total.
 * Workers start once (model loading is not timed); each round enqueues the images as new jobs
 * (paths; the workers read them) while the workers wait. Rounds are interleaved (1, 2, 3, 1, ...)
 * and each figure is the median, so drift in a shared machine's speed hits all three alike.
 * Usage: npm run build && node bench/queue.js [--model atto] [--images 300] [--rounds 3] [--layout pool]
 * Targets: (2) >= 0.95 x (1); (3) >= 0.9 x (1).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const { values } = parseArgs({ options: { model: { type: 'string', default: 'atto' }, images: { type: 'string', default: '300' }, rounds: { type: 'string', default: '3' }, layout: { type: 'string', default: 'pool' }, 'coco-dir': { type: 'string' } } });
const { DetectionQueue } = await import('../dist/queue/index.js');
const cores = os.availableParallelism();
const N = Number(values.images);
const rounds = Number(values.rounds);
const coco = path.resolve(values['coco-dir'] ?? path.join(root, '..', 'shared', 'coco', 'val2017'));
const env = { ...process.env, DEIMV2_MODEL_DIR: process.env.DEIMV2_MODEL_DIR ?? path.join(root, '..', 'shared', 'models') };

/** CPU seconds (user + system) a live process has used so far. */
function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => `${Math.min(...xs).toFixed(1)}-${Math.max(...xs).toFixed(1)}`;

// The folder: the COCO images repeated to N files (symlinks, so every run reads the same bytes).
const work = mkdtempSync(path.join(os.tmpdir(), 'deimv2-bench-queue-'));
const folder = path.join(work, 'images');
const sources = readdirSync(coco).filter((f) => f.endsWith('.jpg')).sort();
mkdirSync(folder);
const files = [];
for (let i = 0; i < N; i++) {
  const f = path.join(folder, `img-${String(i).padStart(5, '0')}.jpg`);
  symlinkSync(path.join(coco, sources[i % sources.length]), f);
  files.push(f);
}

// redis-server on a free port, append-only as in production.
const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const redisDir = path.join(work, 'redis');
mkdirSync(redisDir);
const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', redisDir, '--appendonly', 'yes', '--save', '', '--loglevel', 'warning'], { stdio: 'ignore' });
const url = `redis://127.0.0.1:${port}`;
const probe = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 50 });
probe.on('error', () => {});
await probe.ping();

const children = [];
const workersOf = {};
function startWorker(queue, threads) {
  const args = [cli, 'worker', '--redis', url, '--queue', queue, '--model', values.model, '--layout', values.layout, '--allow-dir', folder, coco];
  if (threads) args.push('--threads', String(threads));
  const proc = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  children.push(proc);
  (workersOf[queue] ??= []).push(proc);
  return new Promise((resolve, reject) => {
    let log = '';
    proc.stderr.on('data', (d) => {
      log += d;
      if (/jobs in flight/.test(log)) resolve(log.split('\n')[0]);
    });
    proc.once('exit', (code) => reject(new Error(`worker exited ${code}: ${log}`)));
  });
}

async function detectRun(target = folder, count = N) {
  // /usr/bin/time gives the child's CPU seconds (these include loading the model).
  const timed = existsSync('/usr/bin/time');
  const argv = [process.execPath, cli, 'detect', target, '--model', values.model, '--layout', values.layout, '-q'];
  const { stderr } = await promisify(execFile)(timed ? '/usr/bin/time' : argv[0], timed ? ['-f', 'cpu-seconds %U %S', ...argv] : argv.slice(1), { env, maxBuffer: 1 << 26 });
  const m = /end to end ([\d.]+) img\/s/.exec(stderr);
  if (!m) throw new Error(`no figure in: ${stderr}`);
  const c = /cpu-seconds ([\d.]+) ([\d.]+)/.exec(stderr);
  return { rate: Number(m[1]), cpuMs: c ? ((Number(c[1]) + Number(c[2])) * 1000) / count : NaN };
}

async function queueRun(queue, round) {
  const q = new DetectionQueue({ redis: url, queue });
  const raw = new Queue(queue, { connection: probe });
  try {
    const pids = [redis.pid, ...workersOf[queue].map((p) => p.pid)];
    const cpu0 = pids.map(cpuOf);
    const self0 = process.cpuUsage();
    const t0 = performance.now();
    const ids = [];
    for (let i = 0; i < N; i += 100) ids.push(...(await q.addMany(files.slice(i, i + 100).map((f, k) => ({ image: f, id: `r${round}-${i + k}` })))));
    let failed = 0;
    for await (const r of q.results(ids)) if ('error' in r) failed++;
    const wall = (performance.now() - t0) / 1000;
    const selfCpu = process.cpuUsage(self0);
    const deltas = pids.map((pid, i) => cpuOf(pid) - cpu0[i]);
    const producerS = (selfCpu.user + selfCpu.system) / 1e6;
    const cpuMs = ((deltas.reduce((a, c) => a + c, 0) + producerS) * 1000) / N;
    const parts = { redis: (deltas[0] * 1000) / N, workers: (deltas.slice(1).reduce((a, c) => a + c, 0) * 1000) / N, producer: (producerS * 1000) / N };
    if (failed) throw new Error(`${failed} jobs failed`);
    const jobs = await Promise.all(ids.map((id) => raw.getJob(id)));
    const first = Math.min(...jobs.map((j) => j.processedOn));
    const last = Math.max(...jobs.map((j) => j.finishedOn));
    return { rate: N / ((last - first) / 1000), wall: N / wall, cpuMs, parts };
  } finally {
    await q.close();
    await raw.close();
  }
}

try {
  console.log(`queue vs detect: ${values.model}, layout ${values.layout}, ${N} images (${sources.length} COCO images repeated), ${rounds} interleaved rounds, ${cores} cores, ${os.cpus()[0]?.model?.trim()}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const one = await startWorker('bench-one');
  const half = Math.max(1, Math.floor(cores / 2));
  await Promise.all([startWorker('bench-two', half), startWorker('bench-two', half)]);
  console.log(`  ${one}`);
  // detect's fixed CPU cost (start-up, model load, one image), subtracted from its per-image CPU.
  const fixedMs = (await detectRun(files[0], 1)).cpuMs;
  const figures = { detect: [], detectCpu: [], one: [], oneWall: [], oneCpu: [], two: [], twoWall: [], twoCpu: [], oneParts: [] };
  for (let r = 0; r < rounds; r++) {
    const d = await detectRun();
    d.cpuMs -= fixedMs / N;
    figures.detect.push(d.rate);
    figures.detectCpu.push(d.cpuMs);
    const a = await queueRun('bench-one', r);
    figures.one.push(a.rate);
    figures.oneWall.push(a.wall);
    figures.oneCpu.push(a.cpuMs);
    figures.oneParts.push(a.parts);
    const b = await queueRun('bench-two', r);
    figures.two.push(b.rate);
    figures.twoWall.push(b.wall);
    figures.twoCpu.push(b.cpuMs);
    console.log(`  round ${r + 1}: detect ${d.rate.toFixed(1)} img/s | 1 worker ${a.rate.toFixed(1)} (submit-to-last-result ${a.wall.toFixed(1)}) | 2 workers ${b.rate.toFixed(1)} (${b.wall.toFixed(1)}) | CPU ms/image: detect ${d.cpuMs.toFixed(1)}, 1 worker ${a.cpuMs.toFixed(1)}, 2 workers ${b.cpuMs.toFixed(1)}`);
  }
  const d = median(figures.detect);
  const one1 = median(figures.one);
  const two2 = median(figures.two);
  console.log(`deimv2 detect (${values.layout}, ${cores} threads): ${d.toFixed(1)} img/s (${spread(figures.detect)})`);
  console.log(`queue, 1 worker (${values.layout}, ${cores} threads): ${one1.toFixed(1)} img/s (${spread(figures.one)}) = ${(one1 / d).toFixed(3)} x detect (target >= 0.95); from submit to last result ${median(figures.oneWall).toFixed(1)} img/s`);
  console.log(`queue, 2 workers (${values.layout}, ${half} thread(s) each): ${two2.toFixed(1)} img/s (${spread(figures.two)}) = ${(two2 / d).toFixed(3)} x detect (target >= 0.9); from submit to last result ${median(figures.twoWall).toFixed(1)} img/s`);
  console.log(`CPU per image (all processes involved: detect less its start-up and model load; queue: workers + redis-server + producer): detect ${median(figures.detectCpu).toFixed(1)} ms, 1 worker ${median(figures.oneCpu).toFixed(1)} ms, 2 workers ${median(figures.twoCpu).toFixed(1)} ms`);
  const part = (k) => median(figures.oneParts.map((p) => p[k])).toFixed(2);
  console.log(`  1 worker's CPU per image: worker ${part('workers')} ms, redis-server ${part('redis')} ms, producer ${part('producer')} ms`);
  console.log(`load average after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} (other processes on this machine share its cores)`);
} finally {
  for (const c of children) c.kill('SIGTERM');
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r)))));
  probe.disconnect();
  redis.kill('SIGTERM');
  await new Promise((r) => redis.once('exit', r));
  rmSync(work, { recursive: true, force: true });
}
