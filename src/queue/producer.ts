/**
 * DetectionQueue: the producer side of queue mode.
 *
 * @example
 * const q = new DetectionQueue({ redis: 'redis://host:6379', queue: 'detect' });
 * const id = await q.add({ image: '/data/photos/a.jpg', options: { threshold: 0.5 } });
 * const result = await q.result(id); // { id, file, width, height, detections } or { id, file, error }
 * for await (const r of q.results([id1, id2])) console.log(r.id, 'error' in r ? r.error.code : r.detections.length);
 * await q.close();
 *
 * Delivery is at least once with results idempotent by job id: adding a job whose id is already in
 * the queue adds nothing and its one result is returned. Results arrive through BullMQ's event
 * stream; the states of awaited jobs are re-read when the stream is quiet and after a reconnection,
 * so a Redis restart or a missed event delays a result but never loses it.
 */
import path from 'node:path';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { DeimError } from '../errors.js';
import { checkRedisTarget, createRedis, redactRedisUrl, waitForRedis } from './connection.js';
import { checkImagePath, checkJobId, checkJobOptions, checkUrl, decodeFailure, defaultJobId, DEFAULT_MAX_BYTES, JOB_LIMITS, JOB_NAME, JOB_VERSION, parseJobResult, type DetectionJobOptions, type JobData, type JobImage, type JobResult } from './jobs.js';
import { readWorkers, workersKey } from './stats.js';
import type { QueueStats, RedisConnectionOptions, RedisTarget } from './types.js';
import { checkQueueName } from './worker.js';

export interface DetectionQueueOptions {
  redis: RedisTarget;
  queue: string;
  /** Largest Buffer add() accepts; default 20 MB (workers have their own --max-bytes). */
  maxBytes?: number;
  /** Attempts per job for transient failures (bad input fails at once); default 5. */
  attempts?: number;
  /** First retry delay; doubles each attempt. Default 1000 ms. */
  backoffMs?: number;
  /** How long finished jobs (and so their results) are kept; default 7 days. */
  keepSeconds?: number;
  /** The states of awaited jobs are re-read when no result event came for this long; default 5000 ms. */
  pollMs?: number;
  /** BullMQ key prefix; default "bull". */
  prefix?: string;
  /**
   * How long Redis may stay unreachable while this producer waits on it (adding jobs, awaiting
   * results, stats) before those calls fail with ERR_QUEUE; default 300,000 ms (5 minutes).
   * Shorter outages (a restart) only delay them. Nothing is lost by giving up: jobs stay queued,
   * and results stay stored for keepSeconds, so adding the same jobs again later collects them.
   */
  unreachableMs?: number;
  /** Told when the connection to Redis is lost and when it is back (for a log line). */
  onConnection?: (event: { state: 'lost'; error: string } | { state: 'back'; downMs: number }) => void;
}

export interface AddJob {
  /** A path the workers can read (under their --allow-dir), an http(s) URL, or encoded image bytes. */
  image: string | Buffer | Uint8Array;
  options?: DetectionJobOptions;
  /** Job id; default a hash of the image (its bytes; for a path or URL, the path or URL) and the options. */
  id?: string;
  /** Name shown in results and messages for bytes (default "(N bytes)"). */
  name?: string;
  /**
   * When a job with this id already failed (say its file was missing, or not yet allowed), run it
   * again instead of keeping the stored failure. Default false: one result per id.
   */
  retryFailed?: boolean;
}

export type QueueResult = (JobResult & { id: string }) | { id: string; file?: string; error: { code: string; message: string } };

type Listener = (r: QueueResult) => void;

/** Jobs per addBulk call. */
const ADD_CHUNK = 1000;

export class DetectionQueue {
  readonly name: string;
  readonly maxBytes: number;
  private readonly target: RedisConnectionOptions;
  private readonly prefix: string;
  private readonly queue: Queue;
  private readonly redis: Redis;
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly keepSeconds: number;
  private readonly pollMs: number;
  private events: Promise<QueueEvents> | undefined;
  /** BullMQ leaves connections it was given open: this one is closed here. */
  private eventsRedis: Redis | undefined;
  private readonly waiters = new Map<string, Listener[]>();
  private readonly toCheck = new Set<string>();
  private checkScheduled = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly everyResult = new Set<Listener>();
  /** Names of the jobs this producer added, for failures (whose events carry no data). */
  private readonly names = new Map<string, string>();
  private closed = false;
  private readonly unreachableMs: number;
  /** When the connection was lost (undefined while connected), and who to tell when the wait runs out. */
  private lostAt: number | undefined;
  private lastError = '';
  private outageTimer: NodeJS.Timeout | undefined;
  private readonly outageListeners = new Set<(e: DeimError) => void>();

  constructor(options: DetectionQueueOptions) {
    this.target = checkRedisTarget(options?.redis);
    this.name = checkQueueName(options.queue);
    this.prefix = options.prefix ?? 'bull';
    this.maxBytes = positive(options.maxBytes ?? DEFAULT_MAX_BYTES, 'maxBytes');
    this.attempts = positive(options.attempts ?? 5, 'attempts');
    this.backoffMs = positive(options.backoffMs ?? 1000, 'backoffMs');
    this.keepSeconds = positive(options.keepSeconds ?? 7 * 24 * 3600, 'keepSeconds');
    this.pollMs = positive(options.pollMs ?? 5000, 'pollMs');
    this.unreachableMs = positive(options.unreachableMs ?? 300_000, 'unreachableMs');
    this.redis = createRedis(this.target, 'deimv2-producer');
    this.queue = new Queue(this.name, { connection: this.redis, prefix: this.prefix });
    this.queue.on('error', () => {}); // connection trouble: ioredis reconnects and replays
    const tell = options.onConnection ?? (() => {});
    this.redis.on('error', (e: Error) => (this.lastError = e.message));
    this.redis.on('close', () => {
      if (this.closed || this.lostAt !== undefined) return;
      this.lostAt = Date.now();
      tell({ state: 'lost', error: this.lastError || 'connection closed' });
      this.outageTimer = setTimeout(() => this.giveUp(), this.unreachableMs);
    });
    this.redis.on('ready', () => {
      if (this.lostAt === undefined) return;
      const downMs = Date.now() - this.lostAt;
      this.lostAt = undefined;
      clearTimeout(this.outageTimer);
      if (!this.closed) tell({ state: 'back', downMs });
    });
  }

  /** Redis has been away for unreachableMs: every call waiting on it fails now. */
  private giveUp(): void {
    const since = this.lostAt ?? Date.now();
    const error = new DeimError(
      'ERR_QUEUE',
      `Redis at ${redactRedisUrl(this.target.url)} unreachable for ${Math.round((Date.now() - since) / 1000)} s${this.lastError ? ` (${this.lastError})` : ''}: gave up waiting. ` +
        'The jobs stay queued and their results stay stored: submit the same jobs again to collect them',
      { input: redactRedisUrl(this.target.url) },
    );
    for (const l of [...this.outageListeners]) l(error);
  }

  /** The promise, or ERR_QUEUE once Redis has been unreachable for unreachableMs while it was pending. */
  private whileReachable<T>(work: Promise<T>): Promise<T> {
    let listener: ((e: DeimError) => void) | undefined;
    const gaveUp = new Promise<never>((_, reject) => this.outageListeners.add((listener = reject)));
    return Promise.race([work, gaveUp]).finally(() => this.outageListeners.delete(listener!));
  }

  /** Fails with ERR_QUEUE when Redis cannot be reached within timeoutMs. */
  async ready(timeoutMs = 10_000): Promise<void> {
    this.checkOpen();
    await waitForRedis(this.redis, this.target.url, timeoutMs);
  }

  /** Enqueues one image; returns its job id. Adding an id that is already queued adds nothing. */
  async add(job: AddJob): Promise<string> {
    return (await this.addMany([job]))[0]!;
  }

  /**
   * Enqueues many images (BullMQ addBulk, one round trip per 1,000 jobs); returns their ids in
   * order. Every job is checked before any is added: one bad job throws and adds nothing.
   */
  async addMany(jobs: readonly AddJob[]): Promise<string[]> {
    this.checkOpen();
    if (!Array.isArray(jobs)) throw new DeimError('ERR_INVALID_ARGUMENT', 'addMany() takes an array of { image, options?, id? }');
    const prepared = jobs.map((job) => this.prepare(job));
    if (prepared.length === 0) return [];
    // In chunks: one MULTI of 100,000 jobs took 600 MB here; a million would not fit. A failure
    // partway leaves the earlier chunks added (adding them again adds nothing: same ids).
    for (let i = 0; i < prepared.length; i += ADD_CHUNK) {
      await this.whileReachable(this.queue.addBulk(
        prepared.slice(i, i + ADD_CHUNK).map(({ id, data }) => ({
          name: JOB_NAME,
          data,
          opts: { jobId: id, attempts: this.attempts, backoff: { type: 'exponential' as const, delay: this.backoffMs }, removeOnComplete: { age: this.keepSeconds }, removeOnFail: { age: this.keepSeconds } },
        })),
      ));
    }
    for (const { id, data, retryFailed } of prepared) {
      this.names.set(id, data.name);
      if (retryFailed && (await this.whileReachable(this.queue.getJobState(id))) === 'failed') {
        await this.whileReachable((async () => (await this.queue.getJob(id))?.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true }))());
      }
    }
    return prepared.map((p) => p.id);
  }

  /** Checks one job and turns it into its id and stored data. */
  private prepare(job: AddJob): { id: string; data: JobData; retryFailed: boolean } {
    if (typeof job !== 'object' || job === null) throw new DeimError('ERR_INVALID_ARGUMENT', 'add() takes { image, options?, id? }');
    const options = checkJobOptions(job.options);
    let image: JobImage;
    let bytes: Uint8Array | undefined;
    let name: string;
    if (typeof job.image === 'string') {
      if (/^https?:\/\//i.test(job.image)) {
        image = { url: checkUrl(job.image) };
        name = image.url;
      } else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(job.image)) {
        throw new DeimError('ERR_INPUT_NOT_ALLOWED', `${job.image}: only paths and http(s) URLs can be queued`, { input: job.image });
      } else {
        if (job.image === '' || job.image.includes('\0')) throw new DeimError('ERR_INVALID_ARGUMENT', 'image path is empty or holds a NUL byte');
        image = { path: checkImagePath(path.resolve(job.image)) };
        name = image.path;
      }
    } else if (job.image instanceof Uint8Array) {
      bytes = job.image;
      if (bytes.length === 0) throw new DeimError('ERR_INPUT_EMPTY', `${job.name ?? 'image bytes'}: empty (0 bytes)`);
      if (bytes.length > this.maxBytes) {
        throw new DeimError('ERR_INPUT_TOO_LARGE', `${job.name ?? 'image bytes'}: ${bytes.length} bytes is more than maxBytes ${this.maxBytes}`, { input: job.name ?? `(${bytes.length} bytes)` });
      }
      image = { bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('base64') };
      name = job.name ?? `(${bytes.length} bytes)`;
    } else {
      throw new DeimError('ERR_INVALID_ARGUMENT', 'image must be a path, an http(s) URL or a Buffer of encoded image bytes');
    }
    if (job.name !== undefined && (typeof job.name !== 'string' || job.name.length > JOB_LIMITS.maxNameLength)) throw new DeimError('ERR_INVALID_ARGUMENT', `name must be a string of at most ${JOB_LIMITS.maxNameLength} characters`);
    const id = job.id !== undefined ? checkJobId(job.id) : defaultJobId(image, bytes, options);
    return { id, data: { v: JOB_VERSION, image, name: job.name ?? name, options }, retryFailed: job.retryFailed === true };
  }

  /** The result of a job once it finished: detections, or `error` for a failed job. */
  result(id: string, options: { timeoutMs?: number } = {}): Promise<QueueResult> {
    this.checkOpen();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const stop = () => {
        clearTimeout(timer);
        this.outageListeners.delete(gaveUp);
      };
      const listener: Listener = (r) => {
        stop();
        resolve(r);
      };
      const gaveUp = (e: DeimError) => {
        stop();
        this.unwatch(id, listener);
        reject(e);
      };
      this.outageListeners.add(gaveUp);
      if (options.timeoutMs !== undefined) {
        timer = setTimeout(() => gaveUp(new DeimError('ERR_QUEUE', `job ${id}: no result within ${options.timeoutMs} ms`, { input: id })), options.timeoutMs);
      }
      this.watch(id, listener).catch((e) => {
        stop();
        reject(e);
      });
    });
  }

  /**
   * Results as jobs finish. With ids: one result per id (also those finished before), in the order
   * they finish, then the iteration ends. Without: every job that finishes from now on, until close().
   */
  results(ids?: Iterable<string>): AsyncIterableIterator<QueueResult> {
    this.checkOpen();
    const buffer: QueueResult[] = [];
    let wake: (() => void) | undefined;
    let failure: unknown;
    const push: Listener = (r) => {
      buffer.push(r);
      wake?.();
    };
    const wanted = ids ? [...new Set(ids)] : undefined;
    let remaining = wanted ? wanted.length : Infinity;
    if (wanted) for (const id of wanted) this.watch(id, push).catch((e) => ((failure = e), wake?.()));
    else {
      this.everyResult.add(push);
      this.subscribe().catch((e) => ((failure = e), wake?.()));
    }
    const wakeMe = () => wake?.();
    const gaveUp = (e: DeimError) => {
      failure = e;
      wake?.();
    };
    this.outageListeners.add(gaveUp);
    const done = () => {
      if (wanted) for (const id of wanted) this.unwatch(id, push);
      else this.everyResult.delete(push);
      this.wakeAll.delete(wakeMe);
      this.outageListeners.delete(gaveUp);
    };
    const self = this;
    const iterator: AsyncIterableIterator<QueueResult> = {
      async next() {
        for (;;) {
          if (buffer.length > 0) {
            remaining--;
            return { value: buffer.shift()!, done: false };
          }
          if (failure) {
            done();
            throw failure;
          }
          if (remaining <= 0 || self.closed) {
            done();
            return { value: undefined, done: true };
          }
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
      async return() {
        done();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    this.wakeAll.add(wakeMe);
    return iterator;
  }

  private readonly wakeAll = new Set<() => void>();

  /** Job counts and per-worker throughput. */
  async stats(): Promise<QueueStats> {
    this.checkOpen();
    const counts = await this.whileReachable(this.queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'completed', 'failed'));
    const { live, gone } = await this.whileReachable(readWorkers(this.redis, workersKey(this.prefix, this.name)));
    return {
      queue: this.name,
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      completed: counts.completed ?? 0,
      failed: counts.failed ?? 0,
      workers: live,
      gone,
      jobsPerSecond: live.reduce((s, w) => s + w.jobsPerSecond, 0),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.outageTimer);
    this.outageListeners.clear();
    for (const w of this.wakeAll) w();
    const events = this.events;
    this.events = undefined;
    // A graceful close needs Redis: when it is away (or does not answer within 5 s), drop the connections instead of waiting for it.
    const away = this.lostAt !== undefined || this.redis.status !== 'ready';
    if (away) {
      // BullMQ's own connections (duplicates for blocking reads) would reconnect forever and keep the process alive.
      await Promise.race([Promise.all([events?.then((e) => e.disconnect()).catch(() => {}), this.queue.disconnect().catch(() => {})]), new Promise((r) => setTimeout(r, 1000).unref())]);
      this.eventsRedis?.disconnect();
      this.redis.disconnect();
    }
    let timer: NodeJS.Timeout | undefined;
    const graceful = Promise.all([events?.then((e) => e.close()).catch(() => {}), this.queue.close().catch(() => {})]);
    await Promise.race([graceful, new Promise((r) => (timer = setTimeout(r, away ? 0 : 5000)))]);
    clearTimeout(timer);
    this.eventsRedis?.disconnect();
    if (this.redis.status === 'ready') await this.redis.quit().catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }

  private checkOpen(): void {
    if (this.closed) throw new DeimError('ERR_CLOSED', 'the queue is closed');
  }

  private async watch(id: string, listener: Listener): Promise<void> {
    const list = this.waiters.get(id);
    if (list) list.push(listener);
    else this.waiters.set(id, [listener]);
    await this.subscribe();
    this.scheduleCheck(id);
  }

  private unwatch(id: string, listener: Listener): void {
    const list = this.waiters.get(id);
    if (!list) return;
    const i = list.indexOf(listener);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.waiters.delete(id);
  }

  private deliver(r: QueueResult): void {
    const list = this.waiters.get(r.id);
    if (list) {
      this.waiters.delete(r.id);
      for (const l of list) l(r);
    }
    for (const l of this.everyResult) l(r);
  }

  /** Subscribes to the event stream from its current end, then polls awaited jobs. */
  private subscribe(): Promise<QueueEvents> {
    this.events ??= (async () => {
      const last = await this.redis.xrevrange(`${this.prefix}:${this.name}:events`, '+', '-', 'COUNT', 1);
      const connection = createRedis(this.target, 'deimv2-producer-events');
      this.eventsRedis = connection;
      const events = new QueueEvents(this.name, { connection, prefix: this.prefix, lastEventId: last[0]?.[0] ?? '0-0' });
      events.on('error', () => {});
      events.on('completed', ({ jobId, returnvalue }) => {
        if (returnvalue === undefined || returnvalue === null) this.scheduleCheck(jobId);
        else this.deliver(this.completion(jobId, returnvalue));
      });
      events.on('failed', ({ jobId, failedReason }) => this.deliver(this.failure(jobId, failedReason)));
      await events.waitUntilReady();
      // Events carry the results; the states of awaited jobs are re-read only when the stream has
      // been quiet for pollMs, and after the event connection comes back (so a large wait does
      // not cost Redis a state read per job every few seconds).
      let lastEventAt = Date.now();
      events.on('completed', () => (lastEventAt = Date.now()));
      events.on('failed', () => (lastEventAt = Date.now()));
      const checkAll = () => {
        for (const id of this.waiters.keys()) this.scheduleCheck(id);
      };
      let lost = false;
      connection.on('close', () => (lost = true));
      connection.on('ready', () => {
        if (lost) checkAll();
        lost = false;
      });
      this.pollTimer = setInterval(() => {
        if (Date.now() - lastEventAt >= this.pollMs) checkAll();
      }, this.pollMs);
      this.pollTimer.unref();
      return events;
    })();
    return this.events;
  }

  /** A stored return value as a result, checked field by field (Redis is writable by others): a bad one is the job's ERR_QUEUE failure. */
  private completion(id: string, returnvalue: unknown): QueueResult {
    try {
      return { ...parseJobResult(returnvalue, id), id };
    } catch (e) {
      const name = this.names.get(id);
      return { id, ...(name !== undefined ? { file: name } : {}), error: { code: (e as DeimError).code ?? 'ERR_QUEUE', message: (e as Error).message } };
    }
  }

  private failure(id: string, reason: string | undefined): QueueResult {
    const name = this.names.get(id);
    return { id, ...(name !== undefined ? { file: name } : {}), error: decodeFailure(reason) };
  }

  private scheduleCheck(id: string): void {
    this.toCheck.add(id);
    if (this.checkScheduled) return;
    this.checkScheduled = true;
    setImmediate(() => {
      this.checkScheduled = false;
      const ids = [...this.toCheck].filter((i) => this.waiters.has(i));
      this.toCheck.clear();
      this.checkStates(ids).catch(() => {}); // Redis away: the next poll tries again
    });
  }

  /**
   * Reads the states of awaited jobs and delivers those that finished: two ZMSCOREs per 1,000 jobs
   * on BullMQ's completed and failed sets (Redis >= 6.2), then the stored result or reason of the
   * finished ones; a job that is in neither and has no hash was never added, or was removed.
   */
  private async checkStates(ids: string[]): Promise<void> {
    const completedKey = this.queue.toKey('completed');
    const failedKey = this.queue.toKey('failed');
    for (let i = 0; i < ids.length && !this.closed; i += 1000) {
      const chunk = ids.slice(i, i + 1000);
      const [completed, failed] = await Promise.all([this.redis.zmscore(completedKey, ...chunk), this.redis.zmscore(failedKey, ...chunk)]);
      const done = new Set(chunk.filter((_, k) => completed[k] !== null));
      const finished = chunk.filter((_, k) => completed[k] !== null || failed[k] !== null);
      const open = chunk.filter((_, k) => completed[k] === null && failed[k] === null);
      const read = this.redis.pipeline();
      for (const id of finished) read.hmget(this.queue.toKey(id), 'returnvalue', 'failedReason');
      for (const id of open) read.exists(this.queue.toKey(id));
      const replies = (await read.exec()) ?? [];
      finished.forEach((id, k) => {
        const [error, fields] = replies[k] ?? [];
        if (error || !Array.isArray(fields)) return;
        const [returnvalue, failedReason] = fields as Array<string | null>;
        if (done.has(id)) {
          if (returnvalue) this.deliver(this.completion(id, returnvalue));
        } else this.deliver(this.failure(id, failedReason ?? undefined));
      });
      open.forEach((id, k) => {
        const [error, exists] = replies[finished.length + k] ?? [];
        if (!error && exists === 0) {
          this.deliver({ id, ...(this.names.has(id) ? { file: this.names.get(id)! } : {}), error: { code: 'ERR_QUEUE', message: `job ${id} is not in queue "${this.name}" (never added, or removed)` } });
        }
      });
    }
  }
}

function positive(v: number, name: string): number {
  if (!Number.isInteger(v) || v < 1) throw new DeimError('ERR_INVALID_ARGUMENT', `${name} must be a positive integer, got ${v}`, { input: String(v) });
  return v;
}

