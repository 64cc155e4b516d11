/**
 * Queue statistics: BullMQ's job counts, and per-worker throughput from a heartbeat each worker
 * writes every few seconds into a Redis hash beside the queue (jobs done, jobs/s over the last
 * 30 s, model and backend).
 */
import type { Redis } from 'ioredis';
import type { WorkerInfo } from './types.js';

export type { QueueStats, WorkerInfo } from './types.js';

export const HEARTBEAT_MS = 2000;
/** A worker not heard from for this long is reported as gone. */
export const GONE_AFTER_MS = 15_000;
const FORGET_AFTER_MS = 10 * 60_000;
const RATE_WINDOW_MS = 30_000;

export function workersKey(prefix: string, queue: string): string {
  return `deimv2:${prefix}:${queue}:workers`;
}

/** Keeps a worker's entry fresh; record() counts each finished job. */
export class Heartbeat {
  private readonly samples: Array<[number, number]> = [];
  private timer: NodeJS.Timeout | undefined;
  private info: WorkerInfo;

  constructor(private readonly redis: Redis, private readonly key: string, info: Omit<WorkerInfo, 'seenAt' | 'completed' | 'failed' | 'jobsPerSecond' | 'startedAt'>) {
    const now = Date.now();
    this.info = { ...info, startedAt: now, seenAt: now, completed: 0, failed: 0, jobsPerSecond: 0 };
  }

  start(): void {
    this.beat();
    this.timer = setInterval(() => this.beat(), HEARTBEAT_MS);
    this.timer.unref();
  }

  record(ok: boolean): void {
    if (ok) this.info.completed++;
    else this.info.failed++;
  }

  counts(): { completed: number; failed: number } {
    return { completed: this.info.completed, failed: this.info.failed };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.beat();
    // Keep the final entry (it shows as gone) so `queue stats` can still report what it did.
  }

  private beat(): void {
    const now = Date.now();
    const done = this.info.completed + this.info.failed;
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[0]![0] > RATE_WINDOW_MS) this.samples.shift();
    const [t0, n0] = this.samples[0]!;
    this.info.jobsPerSecond = now > t0 ? ((done - n0) * 1000) / (now - t0) : 0;
    this.info.seenAt = now;
    // A lost connection queues the write; a stale beat is harmless.
    this.redis.hset(this.key, this.info.id, JSON.stringify(this.info)).catch(() => {});
  }
}

function isWorkerInfo(v: unknown): v is WorkerInfo {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  const num = (k: string) => typeof o[k] === 'number' && Number.isFinite(o[k]);
  const str = (k: string) => typeof o[k] === 'string' && (o[k] as string).length <= 4096;
  return ['id', 'host', 'model', 'backend'].every(str) && ['pid', 'concurrency', 'startedAt', 'seenAt', 'completed', 'failed', 'jobsPerSecond'].every(num);
}

export async function readWorkers(redis: Redis, key: string, now = Date.now()): Promise<{ live: WorkerInfo[]; gone: WorkerInfo[] }> {
  const all = await redis.hgetall(key);
  const live: WorkerInfo[] = [];
  const gone: WorkerInfo[] = [];
  const forget: string[] = [];
  for (const [id, text] of Object.entries(all)) {
    let info: WorkerInfo;
    try {
      info = JSON.parse(text) as WorkerInfo;
    } catch {
      forget.push(id);
      continue;
    }
    // Entries written by anything but a deimv2 worker (Redis is writable by others) are dropped.
    if (!isWorkerInfo(info)) {
      forget.push(id);
      continue;
    }
    const age = now - info.seenAt;
    if (age > FORGET_AFTER_MS) forget.push(id);
    else if (age > GONE_AFTER_MS) gone.push({ ...info, jobsPerSecond: 0 });
    else live.push(info);
  }
  if (forget.length) await redis.hdel(key, ...forget);
  const byStart = (a: WorkerInfo, b: WorkerInfo) => a.startedAt - b.startedAt;
  return { live: live.sort(byStart), gone: gone.sort(byStart) };
}
