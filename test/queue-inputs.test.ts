/**
 * The queue's inputs, hostile (issue 19 items 3 and 4), on a real redis-server and a real worker:
 * job data written into Redis by anything (`__proto__`, wrong types, NaN, 100 MB, not JSON, paths
 * outside --allow-dir, a URL that never ends), stored results and worker entries that are not a
 * deimv2 worker's, `submit --bytes` files that are FIFOs, devices, sparse 3 GB or garbage, and
 * Redis gone while `submit --wait` waits. Each is one job's or one file's clear error with a
 * stable code, in bounded time; the worker keeps serving; nothing is polluted or lost.
 */
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { DetectionQueue, DetectionWorker, type QueueResult } from '../dist/queue/index.js';
import { checkJobData, checkJobOptions, JOB_LIMITS, parseJobResult } from '../dist/queue/jobs.js';
import { readWorkers, workersKey } from '../dist/queue/stats.js';
import { ATTO, CLI, COCO_IMAGES, MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { startRedis, type TestRedis } from './helpers/redis.js';

const IMAGES = readdirSync(COCO_IMAGES).filter((f) => f.endsWith('.jpg')).sort().slice(0, 3).map((f) => path.join(COCO_IMAGES, f));
const IMG = IMAGES[0]!;
const MB = 1024 * 1024;

function errorOf(r: QueueResult): { code: string; message: string } | undefined {
  return 'error' in r ? r.error : undefined;
}

function thrown(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    return { code: (e as { code: string }).code, message: (e as Error).message };
  }
  throw new Error('expected an error');
}

describe('job fields and stored results are bounded and checked (no Redis)', () => {
  const job = (patch: object) => ({ v: 1, image: { path: IMG }, name: 'x', options: {}, ...patch });
  const cases: Array<[string, () => unknown, string, RegExp]> = [
    ['empty data', () => checkJobData({}), 'ERR_INVALID_ARGUMENT', /job data version undefined is not 1/],
    ['an array', () => checkJobData([1, 2]), 'ERR_INVALID_ARGUMENT', /job data must be an object, got \[1,2\]/],
    ['nested 200,000 deep (too deep to print)', () => checkJobData(JSON.parse('['.repeat(200000) + ']'.repeat(200000))), 'ERR_INVALID_ARGUMENT', /job data must be an object, got an array of 1$/],
    ['a 50 MB path', () => checkJobData(job({ image: { path: '/' + 'a'.repeat(50 * MB) } })), 'ERR_INVALID_ARGUMENT', /job image path is 52428801 characters, over the limit of 4096/],
    ['a 50 MB URL', () => checkJobData(job({ image: { url: 'http://x.test/' + 'a'.repeat(50 * MB) } })), 'ERR_INVALID_ARGUMENT', /image URL is 52428814 characters, over the limit of 8192/],
    ['a URL over the limit once encoded', () => checkJobData(job({ image: { url: 'http://x.test/' + ' '.repeat(3000) + 'a' } })), 'ERR_INVALID_ARGUMENT', /characters once encoded, over the limit of 8192/],
    ['a million classes', () => checkJobOptions({ classes: Array(1e6).fill('person') }), 'ERR_INVALID_ARGUMENT', /classes: 1000000 class names, over the limit of 1000/],
    ['a 1 MB class name', () => checkJobOptions({ classes: ['x'.repeat(MB)] }), 'ERR_INVALID_ARGUMENT', /each at most 200 characters\), got \["x{60,}\.\.\.$/],
    ['negative threshold', () => checkJobOptions({ threshold: -1 }), 'ERR_INVALID_ARGUMENT', /threshold must be a number from 0 to 1, got -1/],
    ['NaN threshold (null in JSON)', () => checkJobOptions(JSON.parse('{"threshold": null}')), 'ERR_INVALID_ARGUMENT', /threshold must be a number from 0 to 1, got null/],
    ['Infinity threshold (a string)', () => checkJobOptions({ threshold: 'Infinity' }), 'ERR_INVALID_ARGUMENT', /got "Infinity"/],
    ['__proto__ option', () => checkJobOptions(JSON.parse('{"__proto__": {"threshold": 0}}')), 'ERR_INVALID_ARGUMENT', /unknown job option "__proto__"/],
    ['constructor option', () => checkJobOptions({ constructor: { prototype: { x: 1 } } }), 'ERR_INVALID_ARGUMENT', /unknown job option "constructor"/],
    ['unknown option (batch)', () => checkJobOptions({ batch: 1e9 }), 'ERR_INVALID_ARGUMENT', /unknown job option "batch"/],
    ['result: not JSON (truncated)', () => parseJobResult('{"file":"a.jpg","wid', 'j1'), 'ERR_QUEUE', /^job j1: stored result not valid JSON/],
    ['result: binary garbage', () => parseJobResult('\u0000\u0001\u00ff', 'j2'), 'ERR_QUEUE', /^job j2: stored result not valid JSON/],
    ['result: 17 MB', () => parseJobResult('"' + 'a'.repeat(17 * MB) + '"', 'j3'), 'ERR_QUEUE', /^job j3: stored result is 17825794 characters, over the limit of 16777216/],
    ['result: deep nesting', () => parseJobResult('['.repeat(100000) + ']'.repeat(100000), 'j4'), 'ERR_QUEUE', /^job j4: stored result JSON nested deeper than the limit of 8 levels/],
    ['result: wrong types', () => parseJobResult({ file: 'a.jpg', width: '640', height: 480, detections: [], model: 'atto', backend: 'cpu' }, 'j5'), 'ERR_QUEUE', /"width" must be a positive integer, got "640"/],
    ['result: NaN/Infinity box (null in JSON)', () => parseJobResult(JSON.stringify({ file: 'a', width: 1, height: 1, model: 'atto', backend: 'cpu', detections: [{ label: 'person', classId: 0, categoryId: 1, score: 0.5, box: [0, 0, NaN, Infinity] }] }), 'j6'), 'ERR_QUEUE', /detections\[0\] must be .* got \{"label":"person"/],
    ['result: negative score', () => parseJobResult({ file: 'a', width: 1, height: 1, model: 'atto', backend: 'cpu', detections: [{ label: 'person', classId: 0, categoryId: 1, score: -1, box: [0, 0, 1, 1] }] }, 'j7'), 'ERR_QUEUE', /detections\[0\] must be/],
    ['result: a million detections', () => parseJobResult({ file: 'a', width: 1, height: 1, model: 'atto', backend: 'cpu', detections: Array(1e6).fill(0) }, 'j8'), 'ERR_QUEUE', /1000000 detections, over the limit of 10000/],
  ];
  it.each(cases)('%s', (_name, f, code, message) => {
    const t0 = Date.now();
    const e = thrown(f);
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message.length).toBeLessThan(500);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a stored result keeps only the known fields, and its id is the job\'s', () => {
    const r = parseJobResult(JSON.stringify({ id: 'other', __proto__: { polluted: 1 }, file: 'a.jpg', width: 2, height: 3, model: 'atto', backend: 'cpu', detections: [{ label: 'cat', classId: 15, categoryId: 17, score: 0.5, box: [0, 0, 1, 1], extra: 1 }] }), 'j');
    expect(r).toEqual({ file: 'a.jpg', width: 2, height: 3, model: 'atto', backend: 'cpu', detections: [{ label: 'cat', classId: 15, categoryId: 17, score: 0.5, box: [0, 0, 1, 1] }] });
    expect(JOB_LIMITS.maxPathLength).toBe(4096);
  });
});

describe('queue inputs on a real redis-server and worker', () => {
  let redis: TestRedis;
  let detector: Detector;
  let worker: DetectionWorker;
  let q: DetectionQueue;
  let server: http.Server;
  let base: string;
  let dir: string;
  const logs: string[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    dir = tempDir('deimv2-queue-inputs-');
    detector = await Detector.create({ model: ATTO, layout: 'single', threads: 1 });
    // Frequent stall checks: a job whose options BullMQ cannot read is reset and handed back by the next one.
    worker = await DetectionWorker.start({ redis: redis.url, queue: 'inputs', detector, allowDirs: [COCO_IMAGES, dir], maxBytes: MB, urlTimeoutMs: 1500, stalledInterval: 1000, log: (l) => logs.push(l.slice(0, 500)) });
    q = new DetectionQueue({ redis: redis.url, queue: 'inputs', backoffMs: 50, pollMs: 1000, attempts: 2 });
    // A server whose body never ends: one byte every 200 ms.
    server = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const t = setInterval(() => res.write('x'), 200);
      req.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 120_000);

  afterAll(async () => {
    await q?.close();
    await worker?.close();
    await detector?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await redis?.stop();
  }, 60_000);

  it('hostile jobs written straight into Redis each fail with their reason; the worker keeps serving; nothing is polluted', async () => {
    const jobs: Array<[string, unknown, string, RegExp]> = [
      ['proto', JSON.parse(`{"v":1,"image":{"path":${JSON.stringify(IMG)}},"options":{"__proto__":{"polluted":true}}}`), 'ERR_INVALID_ARGUMENT', /unknown job option "__proto__"/],
      ['ctor', { v: 1, image: { path: IMG }, options: { constructor: { prototype: { polluted: true } } } }, 'ERR_INVALID_ARGUMENT', /unknown job option "constructor"/],
      ['negative', { v: 1, image: { path: IMG }, options: { threshold: -0.5 } }, 'ERR_INVALID_ARGUMENT', /threshold must be a number from 0 to 1, got -0.5/],
      ['nan', { v: 1, image: { path: IMG }, options: { threshold: NaN } }, 'ERR_INVALID_ARGUMENT', /got null/],
      ['batch', { v: 1, image: { path: IMG }, options: { batch: 1e9 } }, 'ERR_INVALID_ARGUMENT', /unknown job option "batch"/],
      ['outside', { v: 1, image: { path: '/etc/passwd' }, options: {} }, 'ERR_INPUT_NOT_ALLOWED', /\/etc\/passwd: not allowed: it is outside the worker's --allow-dir folders/],
      ['dotdot', { v: 1, image: { path: `${COCO_IMAGES}/../../../../etc/passwd` }, options: {} }, 'ERR_INPUT_NOT_ALLOWED', /not allowed/],
      ['huge-path', { v: 1, image: { path: '/' + 'a'.repeat(MB) }, options: {} }, 'ERR_INVALID_ARGUMENT', /over the limit of 4096/],
      ['huge-url', { v: 1, image: { url: 'http://x.test/' + 'a'.repeat(MB) }, options: {} }, 'ERR_INVALID_ARGUMENT', /over the limit of 8192/],
      ['never-ends', { v: 1, image: { url: `${base}/never.jpg` }, options: {} }, 'ERR_INPUT_TIMEOUT', /never\.jpg: no complete answer within 1.5 s/],
      // Credentials go as Basic auth (fetch refuses them in the URL) and never into the reason.
      ['credentials', { v: 1, image: { url: base.replace('http://', 'http://user:s3cret@') + '/never.jpg' } , options: {} }, 'ERR_INPUT_TIMEOUT', /^http:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+\/never\.jpg: no complete answer within 1.5 s/],
      ['string', 'hello', 'ERR_INVALID_ARGUMENT', /job data must be an object/],
    ];
    const raw = new Queue('inputs', { connection: new Redis(redis.url) });
    const r = new Redis(redis.url);
    const t0 = Date.now();
    try {
      for (const [id, data] of jobs) await raw.add('detect', data, { jobId: `h-${id}`, attempts: 1 });
      // 100 MB of "image bytes": refused before it is parsed.
      await raw.add('detect', { v: 1, image: { bytes: 'A'.repeat(100 * MB) }, options: {} }, { jobId: 'h-100mb', attempts: 1 });
      jobs.push(['100mb', null, 'ERR_INPUT_TOO_LARGE', /^job data is 104857\d{3} characters, far over what an image of this worker's --max-bytes 1048576 takes \(limit 34603008 characters\); not read$/]);
      // Written by hand: data that is not JSON, JSON nested 200,000 deep, options BullMQ cannot read, an id without a job.
      const hand = async (id: string, fields: Record<string, string>) => {
        await r.hset(`bull:inputs:${id}`, { name: 'detect', opts: '{}', timestamp: String(Date.now()), ...fields });
        await r.lpush('bull:inputs:wait', id);
      };
      await hand('h-garbage', { data: 'not json {' });
      jobs.push(['garbage', null, 'ERR_INPUT_FORMAT', /^job data is not JSON: Unexpected token/]);
      await hand('h-deep', { data: '['.repeat(200000) + ']'.repeat(200000) });
      jobs.push(['deep', null, 'ERR_INPUT_FORMAT', /job data is JSON nested deeper than the limit of 16 levels/]);
      // Options BullMQ cannot read (before: its fetch threw, and the worker fetched nothing for 15 s
      // each time stall detection handed the job back): reset, the job runs as a plain one.
      await hand('h-badopts', { data: JSON.stringify({ v: 1, image: { path: IMG } }), opts: 'garbage', progress: '{' });
      await r.lpush('bull:inputs:wait', 'h-nohash');
      // The worker fails it (no version), or the producer, reading first, finds no such job: either is a clear end.
      jobs.push(['nohash', null, 'ERR_INVALID_ARGUMENT|ERR_QUEUE', /job data version undefined is not 1|job h-nohash is not in queue "inputs"/]);
    } finally {
      await raw.close();
      r.disconnect();
    }
    const good = await q.add({ image: IMAGES[1]! });
    const badopts = q.result('h-badopts', { timeoutMs: 90_000 });
    const results = await Promise.all(jobs.map(([id]) => q.result(`h-${id}`, { timeoutMs: 90_000 })));
    jobs.forEach(([id, , code, message], i) => {
      expect(errorOf(results[i]!)?.code, `${id}: ${JSON.stringify(results[i]).slice(0, 300)}`).toMatch(new RegExp(`^(${code})$`));
      expect(errorOf(results[i]!)!.message, id).toMatch(message);
      expect(errorOf(results[i]!)!.message.length, id).toBeLessThan(1000);
    });
    expect(errorOf(await q.result(good, { timeoutMs: 60_000 }))).toBeUndefined();
    expect(await badopts).toMatchObject({ file: IMG, width: 427, height: 640 });
    expect(logs.join('\n')).toMatch(/a job in Redis had options BullMQ cannot read .*; 1 such job\(s\) reset to run as plain jobs/);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
    expect(Date.now() - t0).toBeLessThan(120_000);
    expect(logs.every((l) => l.length < 500)).toBe(true);
  }, 180_000);

  it('a stored result or a worker entry not written by a deimv2 worker is a clear error, not a result', async () => {
    const r = new Redis(redis.url);
    try {
      const now = Date.now();
      for (const [id, value] of [['fake-1', '{"id":"other","file":"a.jpg","width":"x"}'], ['fake-2', 'not json']] as const) {
        await r.hset(`bull:inputs:${id}`, { name: 'detect', data: '{}', opts: '{}', timestamp: String(now), finishedOn: String(now), returnvalue: value });
        await r.zadd('bull:inputs:completed', now, id);
      }
      const [a, b] = await Promise.all(['fake-1', 'fake-2'].map((id) => q.result(id, { timeoutMs: 30_000 })));
      expect(a).toMatchObject({ id: 'fake-1', error: { code: 'ERR_QUEUE', message: expect.stringMatching(/^job fake-1: stored result "width" must be a positive integer, got "x"/) } });
      expect(b).toMatchObject({ id: 'fake-2', error: { code: 'ERR_QUEUE', message: expect.stringMatching(/^job fake-2: stored result not valid JSON/) } });
      // A heartbeat entry of the wrong shape (a fresh one naming another model) does not block workers or stats.
      await r.hset(workersKey('bull', 'inputs'), 'fake', JSON.stringify({ id: 'fake', model: 'other', seenAt: 'now' }));
      const { live } = await readWorkers(r, workersKey('bull', 'inputs'));
      expect(live.map((w) => w.id)).toEqual([worker.id]);
      expect(await r.hexists(workersKey('bull', 'inputs'), 'fake')).toBe(0);
    } finally {
      r.disconnect();
    }
  }, 60_000);

  it('submit --bytes: a FIFO, a device, a sparse 3 GB file, an empty file and garbage each fail alone; the good files get results', async () => {
    const files = path.join(dir, 'submit');
    mkdirSync(files);
    copyFileSync(IMAGES[0]!, path.join(files, 'good.jpg'));
    execFileSync('mkfifo', [path.join(files, 'fifo.jpg')]);
    writeFileSync(path.join(files, 'big.jpg'), '');
    truncateSync(path.join(files, 'big.jpg'), 3 * 1024 ** 3);
    writeFileSync(path.join(files, 'empty.jpg'), '');
    writeFileSync(path.join(files, 'garbage.jpg'), Buffer.from([0, 1, 2, 0xff, 0xfe, 0, 0x89]));
    const out = path.join(dir, 'submit.json');
    const t0 = Date.now();
    // A folder's listing skips FIFOs: name it.
    const r = await cli(['submit', files, path.join(files, 'fifo.jpg'), '/dev/zero', '--bytes', '--redis', redis.url, '--queue', 'inputs', '--wait', '--json', out, '-q'], 90_000);
    expect(r.code, r.stderr).toBe(1);
    expect(Date.now() - t0).toBeLessThan(90_000);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ file: string; error?: string; detections?: unknown[] }> };
    const by = Object.fromEntries(doc.results.map((e) => [path.basename(e.file), e]));
    expect(by['good.jpg']!.detections!.length).toBeGreaterThan(0);
    expect(by['fifo.jpg']!.error).toMatch(/fifo\.jpg: not a regular file/);
    expect(by['zero']!.error).toMatch(/\/dev\/zero: not a regular file/);
    expect(by['big.jpg']!.error).toMatch(/big\.jpg: 3221225472 bytes is more than the 20971520 bytes a job may carry/);
    expect(by['empty.jpg']!.error).toMatch(/empty\.jpg: empty file \(0 bytes\)/);
    expect(by['garbage.jpg']!.error).toMatch(/garbage\.jpg: .*not an image|garbage\.jpg: .*unsupported/i);
    expect(r.stderr).toMatch(/5 of 6 file\(s\) failed/);
  }, 120_000);

  it('Redis gone for 8 s during submit --wait: submit says so, reconnects, and gets every result; the worker serves on', async () => {
    // No worker serves "gone" until Redis is back, so every result comes after the outage.
    const out = path.join(dir, 'gone.json');
    const proc = cliProcess(['submit', ...IMAGES, '--redis', redis.url, '--queue', 'gone', '--wait', '--json', out]);
    await proc.until(/3 job\(s\) queued/);
    await redis.down();
    await new Promise((r) => setTimeout(r, 8000));
    await redis.up();
    const late = await DetectionWorker.start({ redis: redis.url, queue: 'gone', detector, allowDirs: [COCO_IMAGES] });
    try {
      const code = await proc.exit(60_000);
      expect(code, proc.stderr()).toBe(0);
      expect(proc.stderr()).toMatch(/lost the connection to Redis \(.*\); reconnecting, giving up after 300 s without it \(--redis-timeout\)/);
      expect(proc.stderr()).toMatch(/Redis is back after \d+\.\d s/);
      const doc = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ error?: string }> };
      expect(doc.results.length).toBe(3);
      expect(doc.results.filter((e) => e.error)).toEqual([]);
    } finally {
      await late.close();
    }
    // The worker that lived through the outage takes jobs again.
    expect(errorOf(await q.result(await q.add({ image: IMAGES[2]!, id: 'after-outage' }), { timeoutMs: 60_000 }))).toBeUndefined();
  }, 120_000);

  it('Redis gone for good: submit --wait gives up after --redis-timeout with a clear error and exit 1, and writes what it received; a worker closes without Redis', async () => {
    const out = path.join(dir, 'forever.json');
    const proc = cliProcess(['submit', ...IMAGES, '--redis', redis.url, '--queue', 'forever', '--wait', '--json', out, '--redis-timeout', '3']);
    await proc.until(/3 job\(s\) queued/);
    const t0 = Date.now();
    await redis.down();
    try {
      const code = await proc.exit(60_000);
      expect(code, proc.stderr()).toBe(1);
      expect(Date.now() - t0).toBeLessThan(30_000);
      expect(proc.stderr()).toMatch(/Redis at redis:\/\/127\.0\.0\.1:\d+\/? unreachable for 3 s .*gave up waiting\. The jobs stay queued and their results stay stored/);
      const doc = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ error?: string }> };
      expect(doc.results.map((e) => e.error)).toEqual(Array(3).fill(expect.stringMatching(/no result: Redis unreachable for 3 s \(job d2-[0-9a-f]+ stays queued; submit again to collect it\)/)));
      // The worker that lived through both outages closes while Redis is away (before: BullMQ's
      // close waited on its reconnecting blocking connection, over 40 s).
      const t1 = Date.now();
      await worker.close();
      expect(Date.now() - t1).toBeLessThan(20_000);
      expect(logs.join('\n')).toMatch(/no job in hand, but BullMQ has not closed \(Redis reconnecting\?\): closing without it/);
    } finally {
      await redis.up();
    }
  }, 90_000);
});

async function cli(args: string[], timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  const p = cliProcess(args);
  const code = await p.exit(timeoutMs);
  return { code, stderr: p.stderr() };
}

function cliProcess(args: string[]) {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  return {
    stderr: () => stderr,
    async until(re: RegExp, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(stderr)) {
        if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`no ${re} in: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    async exit(timeoutMs: number) {
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(t);
      }
    },
  };
}
