/**
 * Queue mode on a real redis-server (started here on a free port, append-only, own data folder):
 * results equal detect()'s, idempotent ids, the security rules (allowed folders, byte caps, http(s)
 * only), transient retries, annotated copies, Redis URLs with password and database, the CLI
 * (submit --wait writes what detect --json writes; queue stats), and a SIGTERM drain.
 */
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { DetectionQueue, DetectionWorker, type QueueResult } from '../dist/queue/index.js';
import { ATTO, CLI, COCO_IMAGES, MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { makeTlsFiles, startRedis, type TestRedis } from './helpers/redis.js';
import { deimv2 } from './helpers/cli.js';

const run = promisify(execFile);
const IMAGES = readdirSync(COCO_IMAGES).filter((f) => f.endsWith('.jpg')).sort().slice(0, 4).map((f) => path.join(COCO_IMAGES, f));
const DETECTOR = { model: ATTO, layout: 'single' as const, threads: 1 };

function errorOf(r: QueueResult): { code: string; message: string } | undefined {
  return 'error' in r ? r.error : undefined;
}

describe('queue mode (BullMQ on a real redis-server)', () => {
  let redis: TestRedis;
  let worker: DetectionWorker;
  let q: DetectionQueue;
  let allowed: string;
  let outside: string;
  let server: http.Server;
  let base: string;
  const hits = new Map<string, number>();

  beforeAll(async () => {
    redis = await startRedis();
    allowed = tempDir('deimv2-queue-allowed-');
    outside = tempDir('deimv2-queue-outside-');
    worker = await DetectionWorker.start({ redis: redis.url, queue: 'detect', detectorOptions: DETECTOR, allowDirs: [COCO_IMAGES, allowed], maxBytes: 1_000_000, urlTimeoutMs: 2000 });
    q = new DetectionQueue({ redis: redis.url, queue: 'detect', backoffMs: 50, pollMs: 1000 });
    const image = readFileSync(IMAGES[0]!);
    server = http.createServer((req, res) => {
      const n = (hits.get(req.url!) ?? 0) + 1;
      hits.set(req.url!, n);
      if (req.url === '/image.jpg') res.writeHead(200, { 'content-type': 'image/jpeg' }).end(image);
      else if (req.url === '/flaky.jpg') {
        if (n <= 2) res.writeHead(503).end('busy');
        else res.writeHead(200).end(image);
      } else if (req.url === '/big') {
        // No content-length: the worker must stop reading at its cap.
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        const chunk = Buffer.alloc(64 * 1024, 1);
        let sent = 0;
        const pump = () => {
          while (sent < 3_000_000) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        pump();
      } else if (req.url === '/slow') {
        setTimeout(() => res.writeHead(200).end(image), 5000).unref();
      } else res.writeHead(404).end('no');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await q?.close();
    await worker?.close();
    server?.closeAllConnections();
    await new Promise((r) => server?.close(r));
    await redis?.stop();
  });

  it('gives the same detection objects as detect(), for paths, bytes and URLs', async () => {
    const ids = await Promise.all(IMAGES.map((image) => q.add({ image })));
    const bytesId = await q.add({ image: readFileSync(IMAGES[1]!), name: 'second.jpg' });
    const urlId = await q.add({ image: `${base}/image.jpg` });
    const results = await Promise.all([...ids, bytesId, urlId].map((id) => q.result(id, { timeoutMs: 60_000 })));
    const direct = await Promise.all(IMAGES.map((image) => worker.detector.detect(image)));
    for (let i = 0; i < IMAGES.length; i++) {
      const r = results[i]!;
      expect(errorOf(r)).toBeUndefined();
      expect(r).toMatchObject({ id: ids[i], file: IMAGES[i], width: direct[i]!.width, height: direct[i]!.height, model: 'atto', backend: 'cpu' });
      expect((r as { detections: unknown }).detections).toEqual(direct[i]!.detections);
    }
    expect(results[IMAGES.length]).toMatchObject({ file: 'second.jpg', detections: direct[1]!.detections });
    expect(results[IMAGES.length + 1]).toMatchObject({ file: `${base}/image.jpg`, detections: direct[0]!.detections });
    expect(direct[0]!.detections.length).toBeGreaterThan(0);
  });

  it('is idempotent by job id: the same job twice is one job with one result', async () => {
    const a = await q.add({ image: IMAGES[2]!, options: { threshold: 0.3 } });
    const b = await q.add({ image: IMAGES[2]!, options: { threshold: 0.3 } });
    const c = await q.add({ image: IMAGES[2]!, options: { threshold: 0.5 } });
    expect(a).toBe(b);
    expect(c).not.toBe(a);
    const bytes = readFileSync(IMAGES[3]!);
    expect(await q.add({ image: bytes })).toBe(await q.add({ image: Buffer.from(bytes) }));
    expect(await q.add({ image: IMAGES[3]!, id: 'my-job-1' })).toBe('my-job-1');
    expect(await q.addMany([{ image: IMAGES[2]!, options: { threshold: 0.3 } }, { image: IMAGES[3]!, id: 'my-job-2' }])).toEqual([a, 'my-job-2']);
    await expect(q.addMany([{ image: IMAGES[3]!, id: 'my-job-3' }, { image: IMAGES[3]!, options: { threshold: -1 } }])).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    expect(errorOf(await q.result('my-job-3'))).toMatchObject({ code: 'ERR_QUEUE', message: expect.stringMatching(/not in queue/) });
    const [ra, rb] = await Promise.all([q.result(a), q.result(b)]);
    expect(ra).toEqual(rb);
    const rc = await q.result(c);
    const scores = (r: QueueResult) => ('detections' in r ? r.detections.map((d) => d.score) : []);
    expect(scores(ra).every((s) => s >= 0.3)).toBe(true);
    expect(scores(rc).every((s) => s >= 0.5)).toBe(true);
    expect(scores(rc).length).toBeLessThan(scores(ra).length);
    const raw = new Queue('detect', { connection: new Redis(redis.url) });
    try {
      const jobs = await raw.getJobs(['completed', 'failed', 'waiting', 'active', 'delayed']);
      expect(jobs.filter((j) => j.id === a)).toHaveLength(1);
    } finally {
      await raw.close();
      await raw.disconnect();
    }
  });

  it('refuses paths outside the allowed folders, symlinks leading out, missing and broken files: failed once, each with its code', async () => {
    const secret = path.join(outside, 'secret.jpg');
    copyFileSync(IMAGES[0]!, secret);
    symlinkSync(secret, path.join(allowed, 'link-out.jpg'));
    writeFileSync(path.join(allowed, 'broken.jpg'), 'not an image');
    writeFileSync(path.join(allowed, 'empty.jpg'), '');
    const cases: Array<[string, string]> = [
      [secret, 'ERR_INPUT_NOT_ALLOWED'],
      [path.join(allowed, 'link-out.jpg'), 'ERR_INPUT_NOT_ALLOWED'],
      [`${allowed}/../${path.basename(outside)}/secret.jpg`, 'ERR_INPUT_NOT_ALLOWED'],
      ['/etc/passwd', 'ERR_INPUT_NOT_ALLOWED'],
      [path.join(allowed, 'missing.jpg'), 'ERR_INPUT_NOT_FOUND'],
      [path.join(allowed, 'broken.jpg'), 'ERR_INPUT_UNREADABLE'],
      [path.join(allowed, 'empty.jpg'), 'ERR_INPUT_EMPTY'],
    ];
    const ids = await Promise.all(cases.map(([image]) => q.add({ image })));
    const results = await Promise.all(ids.map((id) => q.result(id, { timeoutMs: 30_000 })));
    results.forEach((r, i) => expect(errorOf(r)?.code, cases[i]![0]).toBe(cases[i]![1]));
    expect(errorOf(results[0]!)!.message).toMatch(/secret\.jpg: not allowed/);
    expect(errorOf(results[5]!)!.message).toMatch(/broken\.jpg: not an image/);
    const raw = new Queue('detect', { connection: new Redis(redis.url) });
    try {
      for (const id of ids) expect((await raw.getJob(id))!.attemptsMade, id).toBe(1);
    } finally {
      await raw.close();
      await raw.disconnect();
    }
  });

  it('keeps one result per id; retryFailed runs a failed job again', async () => {
    const late = path.join(allowed, 'late.jpg');
    const id = await q.add({ image: late });
    expect(errorOf(await q.result(id, { timeoutMs: 30_000 }))).toMatchObject({ code: 'ERR_INPUT_NOT_FOUND' });
    copyFileSync(IMAGES[0]!, late);
    expect(await q.add({ image: late })).toBe(id);
    expect(errorOf(await q.result(id, { timeoutMs: 30_000 }))).toMatchObject({ code: 'ERR_INPUT_NOT_FOUND' });
    expect(await q.add({ image: late, retryFailed: true })).toBe(id);
    const r = await q.result(id, { timeoutMs: 30_000 });
    expect(errorOf(r)).toBeUndefined();
    expect((r as { detections: unknown[] }).detections.length).toBeGreaterThan(0);
  });

  it('refuses oversized bytes: at add() beyond the producer cap, in the worker beyond its --max-bytes', async () => {
    const small = new DetectionQueue({ redis: redis.url, queue: 'detect', maxBytes: 1000 });
    try {
      await expect(small.add({ image: Buffer.alloc(2000, 7) })).rejects.toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    } finally {
      await small.close();
    }
    const big = await sharp({ create: { width: 1200, height: 1200, channels: 3, noise: { type: 'gaussian', mean: 128, sigma: 60 } } }).png().toBuffer();
    expect(big.length).toBeGreaterThan(1_000_000);
    const id = await q.add({ image: big, name: 'noise.png' });
    const r = await q.result(id, { timeoutMs: 30_000 });
    expect(errorOf(r)).toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    expect(errorOf(r)!.message).toMatch(/noise\.png: \d+ bytes is more than the worker's --max-bytes 1000000/);
    // Files and downloads have the same cap.
    const bigFile = path.join(allowed, 'noise.png');
    writeFileSync(bigFile, big);
    const [rf, ru] = await Promise.all([q.add({ image: bigFile }), q.add({ image: `${base}/big` })].map(async (p) => q.result(await p, { timeoutMs: 30_000 })));
    expect(errorOf(rf!)).toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    expect(errorOf(ru!)).toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
  });

  it('fetches http(s) URLs only: 404 fails once, 503 is retried with backoff, file: is refused', async () => {
    const [missing, flaky] = await Promise.all([q.add({ image: `${base}/missing.jpg` }), q.add({ image: `${base}/flaky.jpg` })]);
    const [rm, rf] = await Promise.all([q.result(missing, { timeoutMs: 30_000 }), q.result(flaky, { timeoutMs: 30_000 })]);
    expect(errorOf(rm)).toMatchObject({ code: 'ERR_INPUT_NOT_FOUND' });
    expect(errorOf(rm)!.message).toMatch(/missing\.jpg: HTTP 404/);
    expect(hits.get('/missing.jpg')).toBe(1);
    expect(errorOf(rf)).toBeUndefined();
    expect(hits.get('/flaky.jpg')).toBe(3);
    await expect(q.add({ image: 'file:///etc/passwd' })).rejects.toMatchObject({ code: 'ERR_INPUT_NOT_ALLOWED' });
    // A job written into Redis by anything else is checked by the worker all the same.
    const raw = new Queue('detect', { connection: new Redis(redis.url) });
    try {
      await raw.add('detect', { v: 1, image: { url: 'file:///etc/passwd' }, name: 'x', options: {} }, { jobId: 'raw-file-url', attempts: 3 });
      await raw.add('detect', { v: 1, image: { path: IMAGES[0] }, name: 'x', options: { threshold: 'process.exit()' } }, { jobId: 'raw-bad-option', attempts: 3 });
      await raw.add('detect', { v: 1, image: { path: IMAGES[0] }, name: 'x', options: { classes: ['unicorn'] } }, { jobId: 'raw-bad-class', attempts: 3 });
    } finally {
      await raw.close();
      await raw.disconnect();
    }
    const bad = await Promise.all(['raw-file-url', 'raw-bad-option', 'raw-bad-class'].map((id) => q.result(id, { timeoutMs: 30_000 })));
    expect(bad.map((r) => errorOf(r)?.code)).toEqual(['ERR_INPUT_NOT_ALLOWED', 'ERR_INVALID_ARGUMENT', 'ERR_INVALID_ARGUMENT']);
    expect(errorOf(bad[2]!)!.message).toMatch(/unknown class "unicorn"/);
    // Options are checked at add() exactly like the CLI's.
    await expect(q.add({ image: IMAGES[0]!, options: { threshold: 2 } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(q.add({ image: IMAGES[0]!, options: { eval: '1' } as never })).rejects.toThrow(/unknown job option "eval"/);
  });

  it('writes an annotated copy under an allowed folder, never over the input nor outside', async () => {
    const out = path.join(allowed, 'out', 'a.png');
    const inputCopy = path.join(allowed, 'input.jpg');
    copyFileSync(IMAGES[0]!, inputCopy);
    const ids = await Promise.all([
      q.add({ image: IMAGES[0]!, options: { annotate: out } }),
      q.add({ image: inputCopy, options: { annotate: inputCopy } }),
      q.add({ image: IMAGES[0]!, options: { annotate: path.join(outside, 'x.png') } }),
    ]);
    const [ok, over, out2] = await Promise.all(ids.map((id) => q.result(id, { timeoutMs: 30_000 })));
    expect(ok).toMatchObject({ annotated: out });
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['png', (ok as { width: number }).width, (ok as { height: number }).height]);
    expect(errorOf(over!)!.message).toMatch(/refusing to overwrite the job's input/);
    expect(readFileSync(inputCopy).equals(readFileSync(IMAGES[0]!))).toBe(true);
    expect(errorOf(out2!)).toMatchObject({ code: 'ERR_INPUT_NOT_ALLOWED' });
    expect(existsSync(path.join(outside, 'x.png'))).toBe(false);
  });

  it('submit --wait writes the JSON detect --json writes; queue stats shows the worker', async () => {
    const dir = tempDir();
    const input = path.join(allowed, 'cli');
    mkdirSync(input);
    for (const f of IMAGES) copyFileSync(f, path.join(input, path.basename(f)));
    writeFileSync(path.join(input, 'broken.jpg'), 'not an image at all');
    const viaQueue = path.join(dir, 'queue.json');
    const viaDetect = path.join(dir, 'detect.json');
    const viaBytes = path.join(dir, 'bytes.json');
    const [s, d, b] = await Promise.all([
      deimv2(['submit', input, '--redis', redis.url, '--queue', 'detect', '--wait', '--json', viaQueue, '-q']),
      deimv2(['detect', input, '--model', 'atto', '--layout', 'single', '--threads', '1', '--json', viaDetect, '-q']),
      deimv2(['submit', input, '--bytes', '--redis', redis.url, '--queue', 'detect', '--wait', '--json', viaBytes, '-q']),
    ]);
    expect(b.code, b.stderr).toBe(1);
    expect(JSON.parse(readFileSync(viaBytes, 'utf8'))).toEqual(JSON.parse(readFileSync(viaDetect, 'utf8')));
    expect(s.code, s.stderr).toBe(1);
    expect(d.code, d.stderr).toBe(1);
    expect(s.stderr).toMatch(/4 image\(s\), \d+ detection\(s\), 1 failed in [\d.]+ s through queue "detect"/);
    expect(JSON.parse(readFileSync(viaQueue, 'utf8'))).toEqual(JSON.parse(readFileSync(viaDetect, 'utf8')));
    const stats = await deimv2(['queue', 'stats', '--redis', redis.url, '--queue', 'detect']);
    expect(stats.code, stats.stderr).toBe(0);
    expect(stats.stdout).toMatch(/queue "detect": \d+ waiting, \d+ active, \d+ delayed \(retry backoff\), \d+ completed, \d+ failed/);
    expect(stats.stdout).toMatch(new RegExp(`${worker.id}\\s+live\\s+atto/cpu`));
    const json = JSON.parse((await deimv2(['queue', 'stats', '--redis', redis.url, '--json'])).stdout);
    expect(json.completed).toBeGreaterThan(5);
    expect(json.workers[0].completed).toBeGreaterThan(5);
  });

  it('submit --annotate-dir plans the copies over the whole submission as detect --out does: never onto another job\'s input, same-named inputs get distinct names', async () => {
    const root = path.join(allowed, 'same-names');
    for (const [sub, src] of [['a', IMAGES[0]!], ['b', IMAGES[1]!]] as const) {
      mkdirSync(path.join(root, sub), { recursive: true });
      copyFileSync(src, path.join(root, sub, 'x.jpg'));
    }
    const a = path.join(root, 'a', 'x.jpg');
    const b = path.join(root, 'b', 'x.jpg');
    const before = readFileSync(a);
    // Before: b's annotated copy replaced a/x.jpg, an input of the same submission.
    const clash = await deimv2(['submit', path.join(root, 'a'), path.join(root, 'b'), '--annotate-dir', path.join(root, 'a'), '--redis', redis.url, '--queue', 'detect', '--wait', '-q']);
    expect(clash.code).not.toBe(0);
    expect(clash.stderr).toMatch(/would overwrite the input .*x\.jpg.*ERR_OUTPUT_CLASH/);
    expect(readFileSync(a).equals(before)).toBe(true);
    // Before: both jobs wrote ann/x.jpg, one copy lost.
    const ann = path.join(root, 'ann');
    const ok = await deimv2(['submit', path.join(root, 'a'), path.join(root, 'b'), '--annotate-dir', ann, '--redis', redis.url, '--queue', 'detect', '--wait', '--json', path.join(root, 'r.json'), '-q']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(readdirSync(ann).sort()).toEqual(['x-1.jpg', 'x.jpg']);
    expect(JSON.parse(readFileSync(path.join(root, 'r.json'), 'utf8')).results).toHaveLength(2);
    expect(readFileSync(a).equals(before)).toBe(true);
    expect(readFileSync(path.join(ann, 'x.jpg')).equals(readFileSync(path.join(ann, 'x-1.jpg')))).toBe(false);
  });

  it('a worker of another model refuses a queue a live worker already serves (before: atto and femto shared it, and submit said "atto" for femto\'s results)', async () => {
    const femto = await Detector.create({ model: 'femto', modelDir: MODEL_DIR, layout: 'single', threads: 1 });
    try {
      await expect(DetectionWorker.start({ redis: redis.url, queue: 'detect', detector: femto, allowDirs: [COCO_IMAGES] })).rejects.toMatchObject({
        code: 'ERR_QUEUE',
        message: expect.stringMatching(/queue "detect" is served by worker .* with model atto; this worker runs femto/),
      });
      // Its own queue is fine.
      const own = await DetectionWorker.start({ redis: redis.url, queue: 'detect-femto', detector: femto, allowDirs: [COCO_IMAGES] });
      await own.close();
    } finally {
      await femto.close();
    }
  });

  it('works with a password and a database number in the URL; a wrong password is a clear error', async () => {
    const secured = await startRedis({ password: 's3cret pass' });
    try {
      const url = `redis://:${encodeURIComponent('s3cret pass')}@127.0.0.1:${secured.port}/5`;
      const w = await DetectionWorker.start({ redis: url, queue: 'db5', detector: worker.detector, allowDirs: [COCO_IMAGES] });
      const p = new DetectionQueue({ redis: url, queue: 'db5' });
      try {
        const r = await p.result(await p.add({ image: IMAGES[0]! }), { timeoutMs: 30_000 });
        expect(errorOf(r)).toBeUndefined();
        const keys = new Redis(url);
        expect((await keys.keys('bull:db5:*')).length).toBeGreaterThan(0);
        keys.disconnect();
      } finally {
        await p.close();
        await w.close();
      }
      const wrong = new DetectionQueue({ redis: `redis://:nope@127.0.0.1:${secured.port}/5`, queue: 'db5' });
      await expect(wrong.ready(1500)).rejects.toMatchObject({ code: 'ERR_QUEUE', message: expect.stringMatching(/redis:\/\/:\*\*\*@127\.0\.0\.1.*WRONGPASS|invalid password/i) });
      await wrong.close();
      expect(() => new DetectionQueue({ redis: 'http://127.0.0.1:1', queue: 'x' })).toThrow(/redis:\/\/ or rediss:\/\//);
    } finally {
      await secured.stop();
    }
  });

  it('works over TLS (rediss://) with a private CA', async () => {
    const tlsDir = tempDir('deimv2-redis-tls-');
    const files = makeTlsFiles(tlsDir);
    const secured = await startRedis({ tls: files });
    try {
      const target = { url: secured.url, tls: { ca: readFileSync(files.ca) } };
      expect(target.url).toMatch(/^rediss:\/\/localhost:\d+$/);
      const w = await DetectionWorker.start({ redis: target, queue: 'tls', detector: worker.detector, allowDirs: [COCO_IMAGES] });
      const p = new DetectionQueue({ redis: target, queue: 'tls' });
      try {
        const r = await p.result(await p.add({ image: IMAGES[1]! }), { timeoutMs: 30_000 });
        expect(errorOf(r)).toBeUndefined();
        // The CLI trusts a private CA through NODE_EXTRA_CA_CERTS.
        const { stdout } = await run(process.execPath, [CLI, 'queue', 'stats', '--redis', secured.url, '--queue', 'tls'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: files.ca } });
        expect(stdout).toMatch(/1 completed, 0 failed/);
      } finally {
        await p.close();
        await w.close();
      }
    } finally {
      await secured.stop();
    }
  });

  it('hands jobs that arrive together to the detector as batches when its batch size is above 1', async () => {
    const batched = await Detector.create({ ...DETECTOR, batch: 4 });
    const sizes: number[] = [];
    const original = batched.detectBatch.bind(batched);
    batched.detectBatch = (inputs, options) => (sizes.push(inputs.length), original(inputs, options));
    const w = await DetectionWorker.start({ redis: redis.url, queue: 'batched', detector: batched, allowDirs: [COCO_IMAGES], concurrency: 8, batchWaitMs: 20 });
    const p = new DetectionQueue({ redis: redis.url, queue: 'batched' });
    try {
      const ids = await Promise.all(Array.from({ length: 16 }, (_, i) => p.add({ image: IMAGES[i % IMAGES.length]!, id: `batched-${i}` })));
      const results = await Promise.all(ids.map((id) => p.result(id, { timeoutMs: 60_000 })));
      const direct = await worker.detector.detect(IMAGES[0]!);
      expect(results.every((r) => errorOf(r) === undefined)).toBe(true);
      expect((results[0] as { detections: unknown }).detections).toEqual(direct.detections);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(16);
      expect(Math.max(...sizes)).toBeGreaterThan(1);
      expect(w.concurrency).toBe(8);
    } finally {
      await p.close();
      await w.close();
      await batched.close();
    }
  });

  it('retries a backend failure with backoff, then completes with the one result', async () => {
    const flaky = await Detector.create(DETECTOR);
    let calls = 0;
    const original = flaky.detectBatch.bind(flaky);
    flaky.detectBatch = async (inputs, options) => {
      if (++calls <= 2) throw Object.assign(new Error('simulated backend failure'), { code: 'ERR_BACKEND_FAILED' });
      return original(inputs, options);
    };
    const w = await DetectionWorker.start({ redis: redis.url, queue: 'flaky-backend', detector: flaky, allowDirs: [COCO_IMAGES] });
    const p = new DetectionQueue({ redis: redis.url, queue: 'flaky-backend', backoffMs: 50 });
    const raw = new Queue('flaky-backend', { connection: new Redis(redis.url) });
    try {
      const id = await p.add({ image: IMAGES[0]! });
      const r = await p.result(id, { timeoutMs: 30_000 });
      expect(errorOf(r)).toBeUndefined();
      expect((r as { detections: unknown }).detections).toEqual((await worker.detector.detect(IMAGES[0]!)).detections);
      const job = (await raw.getJob(id))!;
      expect(job.attemptsMade).toBe(3);
      expect(w.stats()).toMatchObject({ completed: 1, failed: 0, retried: 2 });
    } finally {
      await raw.close();
      await raw.disconnect();
      await p.close();
      await w.close();
      await flaky.close();
    }
  });

  it('SIGTERM: the worker finishes the jobs in hand, takes no new ones, exits 0', async () => {
    const producer = new DetectionQueue({ redis: redis.url, queue: 'drain' });
    const proc = spawn(process.execPath, [CLI, 'worker', '--redis', redis.url, '--queue', 'drain', '--model', 'atto', '--layout', 'single', '--threads', '1', '--concurrency', '3', '--allow-dir', COCO_IMAGES], {
      env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    try {
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) ids.push(await producer.add({ image: IMAGES[i % IMAGES.length]!, id: `drain-${i}` }));
      const seen: QueueResult[] = [];
      const it = producer.results(ids);
      for await (const r of it) {
        seen.push(r);
        if (seen.length === 5) break;
      }
      proc.kill('SIGTERM');
      expect(await exited, stderr).toBe(0);
      expect(stderr).toMatch(/SIGTERM: finishing the jobs in hand/);
      const stats = await producer.stats();
      expect(stats.active).toBe(0);
      expect(stats.failed).toBe(0);
      expect(stats.completed).toBeGreaterThanOrEqual(5);
      expect(stats.completed + stats.waiting).toBe(200);
      expect(stats.waiting).toBeGreaterThan(0);
      expect(stderr).toMatch(new RegExp(`stopped: ${stats.completed} job\\(s\\) completed, 0 failed`));
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await producer.close();
    }
  });
});
