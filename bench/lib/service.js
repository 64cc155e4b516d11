/**
 * `deimv2 serve` as a benchmark sees it from outside: a child process of the built CLI, its HTTP API
 * and its Prometheus metrics, the resident memory of its process tree.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = path.join(root, 'dist', 'cli', 'main.js');

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port free on loopback now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Starts `deimv2 serve ARGS --port P` and waits for GET /health to answer 200.
 * @returns {Promise<{ base: string, pid: number, log: () => string, stop: () => Promise<{ code: number | null, signal: string | null }> }>}
 */
export async function startService(args, { env = {}, readyTimeoutMs = 120_000 } = {}) {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', ...args, '--host', '127.0.0.1', '--port', String(port)], {
    cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (d) => { log = (log + d.toString()).slice(-20_000); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  exited.then(() => { gone = true; });
  const base = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (!gone) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const r = await exited;
    clearTimeout(timer);
    return r;
  };
  const t0 = Date.now();
  for (;;) {
    if (gone) throw new Error(`deimv2 serve ${args.join(' ')} exited before it was ready:\n${log}`);
    try {
      if ((await fetch(`${base}/health`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() - t0 > readyTimeoutMs) {
      await stop();
      throw new Error(`deimv2 serve was not ready after ${readyTimeoutMs / 1000} s:\n${log}`);
    }
    await sleep(200);
  }
  return { base, pid: child.pid, log: () => log, stop };
}

export async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return res.json();
}

/**
 * One histogram of a Prometheus text exposition, summed over its label sets:
 * `{ buckets: [{ le, count }] (cumulative, ascending), sum, count }`.
 */
export function histogram(text, name) {
  const buckets = new Map();
  let sum = 0, count = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '_')) continue;
    const m = /^(\w+?)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (m[1] === `${name}_bucket`) {
      const le = /le="([^"]+)"/.exec(m[2] ?? '')?.[1];
      const key = le === '+Inf' ? Infinity : Number(le);
      buckets.set(key, (buckets.get(key) ?? 0) + value);
    } else if (m[1] === `${name}_sum`) sum += value;
    else if (m[1] === `${name}_count`) count += value;
  }
  return { buckets: [...buckets].sort((a, b) => a[0] - b[0]).map(([le, c]) => ({ le, count: c })), sum, count };
}

/** later - earlier, bucket by bucket: the observations made between two scrapes. */
export function histogramDelta(later, earlier) {
  const before = new Map(earlier.buckets.map((b) => [b.le, b.count]));
  return { buckets: later.buckets.map((b) => ({ le: b.le, count: b.count - (before.get(b.le) ?? 0) })), sum: later.sum - earlier.sum, count: later.count - earlier.count };
}

/** The q-quantile as Prometheus's histogram_quantile computes it (linear within the bucket). */
export function histogramQuantile(h, q) {
  if (h.count <= 0 || h.buckets.length === 0) return NaN;
  const rank = q * h.count;
  let prevLe = 0, prevCount = 0;
  for (const { le, count } of h.buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe; // above the highest finite bucket: its bound is all we know
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(count - prevCount, 1e-12);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** Sum of a counter over its label sets (`name{...} value` lines). */
export function counter(text, name) {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{.*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) total += Number(m[2]);
  }
  return total;
}

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function childrenOf(pid) {
  const out = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** Resident memory in MiB of the service process and of its children (the ffmpeg decoders). */
export function rss(pid) {
  const kids = childrenOf(pid);
  return { serviceMiB: rssKiB(pid) / 1024, childrenMiB: kids.reduce((a, k) => a + rssKiB(k), 0) / 1024, children: kids.length };
}

/** utime + stime of a /proc stat file in ms (USER_HZ is 100 on Linux). */
function cpuMs(file) {
  const stat = readFileSync(file, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

/**
 * CPU time of the service by part, sampled from /proc as it runs (Linux; elsewhere all zero):
 * `sample()` often (a child's time is kept from its last sample, as it may exit before the end),
 * `read()` -> cumulative ms `{ workers, main, runtime, ffmpeg }`: the busiest threads beyond the
 * main one (`workers`: as many as the pool has, `runners`), the main thread, the process's other
 * threads (libuv, GC, compiler, libvips), and its ffmpeg children.
 */
export function cpuSampler(pid, runners) {
  const threads = new Map();
  const children = new Map();
  const sample = () => {
    try {
      for (const t of readdirSync(`/proc/${pid}/task`)) {
        try {
          threads.set(Number(t), cpuMs(`/proc/${pid}/task/${t}/stat`));
        } catch {
          // gone meanwhile
        }
      }
      for (const k of childrenOf(pid)) {
        try {
          children.set(k, cpuMs(`/proc/${k}/stat`));
        } catch {
          // gone meanwhile
        }
      }
    } catch {
      // not Linux, or the service is gone
    }
  };
  const read = () => {
    sample();
    const others = [...threads].filter(([t]) => t !== pid).map(([, ms]) => ms).sort((a, b) => b - a);
    const workers = others.slice(0, runners).reduce((a, b) => a + b, 0);
    return { workers, main: threads.get(pid) ?? 0, runtime: others.slice(runners).reduce((a, b) => a + b, 0), ffmpeg: [...children.values()].reduce((a, b) => a + b, 0) };
  };
  return { sample, read };
}
