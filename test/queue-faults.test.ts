/**
 * The queue under faults, all real: 3 `deimv2 worker` processes, 2,000 jobs (the COCO images
 * repeated, a few broken files among them), one worker SIGKILLed midway and redis-server restarted
 * once. Every job must end with exactly one result; the broken files fail once each with their
 * error; every result of the same image is the same; nothing is lost or duplicated.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DetectionQueue, type QueueResult } from '../dist/queue/index.js';
import { CLI, COCO_IMAGES, MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { startRedis, type TestRedis } from './helpers/redis.js';

const JOBS = 2000;
const IMAGES = readdirSync(COCO_IMAGES).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(COCO_IMAGES, f));

interface WorkerProc {
  proc: ChildProcess;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(url: string, allowDirs: string[]): WorkerProc {
  const proc = spawn(
    process.execPath,
    [CLI, 'worker', '--redis', url, '--queue', 'faults', '--model', 'atto', '--layout', 'single', '--threads', '1',
      '--lock-duration', '5000', '--stalled-interval', '2000', '--allow-dir', ...allowDirs],
    { env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const w: WorkerProc = { proc, stderr: '', exited: new Promise((r) => proc.once('exit', (code, signal) => r({ code, signal }))) };
  proc.stderr!.on('data', (d: Buffer) => (w.stderr += d.toString()));
  return w;
}

describe('queue under faults: 3 workers, 2,000 jobs, a SIGKILL and a Redis restart', () => {
  let redis: TestRedis;
  let dir: string;
  const workers: WorkerProc[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    dir = tempDir('deimv2-queue-faults-');
  });

  afterAll(async () => {
    for (const w of workers) if (w.proc.exitCode === null && w.proc.signalCode === null) w.proc.kill('SIGKILL');
    await redis?.stop();
  });

  it('every job has exactly one result; broken files fail once each; nothing lost or duplicated', async () => {
    // The broken inputs and the error each must end with.
    writeFileSync(path.join(dir, 'text.jpg'), 'this is not an image');
    writeFileSync(path.join(dir, 'empty.jpg'), '');
    writeFileSync(path.join(dir, 'truncated.jpg'), readFileSync(IMAGES[0]!).subarray(0, 2000));
    copyFileSync(IMAGES[1]!, path.join(dir, 'fine.jpg'));
    const broken: Array<[string, string]> = [
      [path.join(dir, 'text.jpg'), 'ERR_INPUT_UNREADABLE'],
      [path.join(dir, 'empty.jpg'), 'ERR_INPUT_EMPTY'],
      [path.join(dir, 'truncated.jpg'), 'ERR_INPUT_UNREADABLE'],
      [path.join(dir, 'missing.jpg'), 'ERR_INPUT_NOT_FOUND'],
      ['/etc/hostname', 'ERR_INPUT_NOT_ALLOWED'],
    ];
    const jobs = Array.from({ length: JOBS }, (_, i) => {
      const b = i % 397 === 100 ? broken[Math.floor(i / 397) % broken.length] : undefined;
      return { id: `job-${String(i).padStart(4, '0')}`, image: b ? b[0] : i % 101 === 50 ? path.join(dir, 'fine.jpg') : IMAGES[i % IMAGES.length]!, expect: b?.[1] };
    });
    expect(jobs.filter((j) => j.expect).length).toBe(5);

    for (let i = 0; i < 3; i++) workers.push(startWorker(redis.url, [COCO_IMAGES, dir]));
    const q = new DetectionQueue({ redis: redis.url, queue: 'faults', backoffMs: 200, pollMs: 1000 });
    const results = new Map<string, QueueResult[]>();
    let killedAt = -1;
    let restartedAt = -1;
    try {
      // Enqueue while the workers start; then collect as they finish.
      for (let i = 0; i < JOBS; i += 100) await Promise.all(jobs.slice(i, i + 100).map((j) => q.add({ image: j.image, id: j.id })));
      let count = 0;
      const faults: Array<Promise<void>> = [];
      const deadline = setTimeout(() => void q.close(), 220_000);
      for await (const r of q.results(jobs.map((j) => j.id))) {
        const list = results.get(r.id) ?? [];
        list.push(r);
        results.set(r.id, list);
        count++;
        if (count === 400 && killedAt < 0) {
          killedAt = count;
          workers[0]!.proc.kill('SIGKILL');
        }
        if (count === 900 && restartedAt < 0) {
          restartedAt = count;
          faults.push(redis.restart());
        }
      }
      clearTimeout(deadline);
      await Promise.all(faults);
    } finally {
      await q.close();
    }
    expect(killedAt).toBe(400);
    expect(restartedAt).toBe(900);
    expect((await workers[0]!.exited).signal).toBe('SIGKILL');

    // Exactly one result per job, none missing.
    const missing = jobs.filter((j) => !results.has(j.id)).map((j) => j.id);
    expect(missing, `missing results: ${missing.slice(0, 10).join(', ')}`).toEqual([]);
    expect([...results.values()].filter((l) => l.length !== 1)).toEqual([]);
    // The broken files failed with their codes; all others succeeded, identical per image.
    const byImage = new Map<string, string>();
    for (const j of jobs) {
      const r = results.get(j.id)![0]!;
      if (j.expect) {
        expect('error' in r ? r.error.code : 'ok', j.id).toBe(j.expect);
        continue;
      }
      expect('error' in r ? r.error : undefined, j.id).toBeUndefined();
      const text = JSON.stringify('detections' in r ? [r.width, r.height, r.detections] : null);
      const seen = byImage.get(j.image);
      if (seen === undefined) byImage.set(j.image, text);
      else expect(text === seen, `${j.id}: a different result for ${j.image}`).toBe(true);
    }

    // Redis agrees: 2,000 jobs, 5 failed after one attempt each, nothing left waiting or active.
    const raw = new Queue('faults', { connection: new Redis(redis.url) });
    try {
      const counts = await raw.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
      expect(counts).toEqual({ waiting: 0, active: 0, delayed: 0, completed: JOBS - 5, failed: 5 });
      for (const j of jobs.filter((x) => x.expect)) {
        const job = (await raw.getJob(j.id))!;
        expect(job.attemptsMade, j.id).toBe(1);
        expect(job.failedReason.startsWith(`${j.expect}: `), job.failedReason).toBe(true);
      }
      // The killed worker's jobs in hand were taken over after stall detection.
      const done = await raw.getJobs(['completed'], 0, -1);
      const stalled = done.filter((job) => (job.stalledCounter ?? 0) > 0).length;
      const retried = done.filter((job) => job.attemptsMade > 1).length;
      expect(stalled).toBeGreaterThan(0);
      console.log(`queue faults: ${JOBS} jobs, ${results.size} with a result, ${[...results.values()].reduce((s, l) => s + l.length - 1, 0)} duplicates, ${missing.length} lost, ${counts.failed} failed (broken files), ` +
        `${stalled} taken over by another worker after stall detection (the SIGKILL; locks lost across the restart), ${retried} retried after a transient error; worker killed at result ${killedAt}, Redis restarted at result ${restartedAt}`);
    } finally {
      await raw.close();
      await raw.disconnect();
    }

    // The survivors drain on SIGTERM and exit 0.
    for (const w of workers.slice(1)) w.proc.kill('SIGTERM');
    for (const w of workers.slice(1)) expect((await w.exited).code, w.stderr).toBe(0);
  }, 280_000);
});
