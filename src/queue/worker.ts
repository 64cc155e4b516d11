/**
 * DetectionWorker: consumes detection jobs from a BullMQ queue with one Detector.
 *
 * - Enough jobs are in flight to keep the backend saturated (default: four times the detector's
 *   runners x batch, plus two to hide Redis round trips); jobs that arrive together go to the
 *   detector as one detectBatch call, so TensorRT gets them as batches.
 * - Bad input (unreadable image, too large, not allowed, bad options) fails the job once with its
 *   error code (BullMQ UnrecoverableError); anything else (backend error, network, Redis) throws a
 *   plain error and BullMQ retries it with the producer's exponential backoff.
 * - close() drains: jobs in hand finish, no new ones are taken. A worker that dies has its jobs
 *   picked up by others after BullMQ's stall detection; Redis restarts are survived by reconnecting.
 */
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UnrecoverableError, Worker, type Job, type JobJson, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { drawDetections } from '../annotate/draw.js';
import { writeAnnotatedImage } from '../annotate/write.js';
import { Detector, type DetectOptions, type DetectorOptions, type DetectorResult } from '../detector.js';
import { DeimError, errorMessage } from '../errors.js';
import { parseJsonBounded } from '../input/limits.js';
import type { DetectionFailure } from '../postprocess/types.js';
import { checkRedisTarget, createRedis, redactRedisUrl, waitForRedis } from './connection.js';
import { checkJobData, DEFAULT_MAX_BYTES, encodeFailure, PERMANENT_CODES, UNREADABLE_DATA, type JobData, type JobResult } from './jobs.js';
import { checkOutputPath, isTransient, openJobImage, resolveAllowDirs, type SourcePolicy } from './sources.js';
import { Heartbeat, readWorkers, workersKey } from './stats.js';
import type { RedisTarget } from './types.js';

export interface DetectionWorkerOptions {
  redis: RedisTarget;
  queue: string;
  /** Options of the worker's Detector (ignored when `detector` is given). */
  detectorOptions?: DetectorOptions;
  /** Use this detector (the worker does not close it). */
  detector?: Detector;
  /** Jobs in flight at once; default 4 x runners x batch + 2 (as many as `deimv2 detect` keeps in flight, and a few to hide Redis round trips). */
  concurrency?: number;
  /** Folders path jobs may read and annotated images may be written under (default none). */
  allowDirs?: readonly string[];
  /** Largest image in bytes (job bytes, files, downloads); default 20 MB. */
  maxBytes?: number;
  /** URL download timeout; default 15 s. */
  urlTimeoutMs?: number;
  /** BullMQ: how long a job's lock lasts without renewal (a dead worker's jobs wait this long). Default 30 s. */
  lockDuration?: number;
  /** BullMQ: how often stalled jobs are looked for. Default 30 s. */
  stalledInterval?: number;
  /** BullMQ: how many times a job may stall (its worker died) before it fails. Default 3. */
  maxStalledCount?: number;
  /** With a batch size above 1 (TensorRT), how long jobs are gathered into a batch; default 2 ms. */
  batchWaitMs?: number;
  /** BullMQ key prefix; default "bull". */
  prefix?: string;
  /** Log lines (start, failures, connection trouble). */
  log?: (line: string) => void;
}

export interface WorkerCounts {
  completed: number;
  failed: number;
  retried: number;
}

interface Pending {
  input: string | Buffer;
  resolve: (r: DetectorResult | DetectionFailure) => void;
  reject: (e: unknown) => void;
}

/**
 * Collects the jobs that arrive together into one detectBatch call per option set: those of the
 * same turn of the event loop, and with a batch size above 1 (TensorRT) those of the next
 * `waitMs` too, until a batch is full.
 */
class Batcher {
  private groups = new Map<string, { options: DetectOptions; items: Pending[] }>();
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;

  constructor(private readonly detector: Detector, private readonly waitMs: number) {}

  run(input: string | Buffer, options: DetectOptions): Promise<DetectorResult | DetectionFailure> {
    return new Promise((resolve, reject) => {
      const key = JSON.stringify(options);
      let group = this.groups.get(key);
      if (!group) this.groups.set(key, (group = { options, items: [] }));
      group.items.push({ input, resolve, reject });
      const batch = this.detector.batchSize;
      if (batch > 1 && group.items.length >= batch) {
        this.flush();
      } else if (this.scheduled === undefined) {
        this.scheduled = batch > 1 && this.waitMs > 0 ? setTimeout(() => this.flush(), this.waitMs) : setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    if (this.scheduled !== undefined) {
      clearTimeout(this.scheduled as NodeJS.Timeout);
      clearImmediate(this.scheduled as NodeJS.Immediate);
      this.scheduled = undefined;
    }
    const groups = [...this.groups.values()];
    this.groups.clear();
    for (const { options, items } of groups) {
      this.detector.detectBatch(items.map((p) => p.input), options).then(
        (results) => items.forEach((p, i) => p.resolve(results[i]!)),
        (e) => items.forEach((p) => p.reject(e)),
      );
    }
  }
}

/**
 * A BullMQ Worker that takes any job a writer of Redis may leave, and never stalls on one:
 * - data that is not JSON or nested deeper than 16 (ERR_INPUT_FORMAT), or far larger than any job
 *   this worker would run (ERR_INPUT_TOO_LARGE), is not parsed: the job gets a marker in its
 *   place and fails at once saying what was wrong (BullMQ's own JSON.parse would throw while
 *   fetching it: the job would sit in "active" until stall detection, and come back);
 * - options or progress that are not JSON make BullMQ's fetch throw before any job exists, and
 *   its main loop then waits 15 s (runRetryDelay) before fetching again, each time the job comes
 *   back from stall detection: such fields are reset to the empty value and the job's lock
 *   dropped, so stall detection hands it back and it is run (and checked) as any other.
 */
class GuardedWorker extends Worker {
  constructor(
    name: string,
    processor: (job: Job) => Promise<JobResult>,
    opts: WorkerOptions,
    private readonly limits: { maxDataChars: number; maxBytes: number; repair: () => Promise<number> },
  ) {
    super(name, processor, opts as never);
  }

  protected override createJob(json: JobJson, jobId: string): Job {
    const data = typeof json.data === 'string' ? json.data : '';
    let problem: string | undefined;
    let code = 'ERR_INPUT_FORMAT';
    if (data.length > this.limits.maxDataChars) {
      code = 'ERR_INPUT_TOO_LARGE';
      problem = `is ${data.length} characters, far over what an image of this worker's --max-bytes ${this.limits.maxBytes} takes (limit ${this.limits.maxDataChars} characters); not read`;
    }
    else {
      try {
        parseJsonBounded(data || '{}', 'job data', { maxDepth: 16 });
      } catch (e) {
        problem = /nested deeper/.test(errorMessage(e)) ? errorMessage(e).replace(/^job data: /, 'is ') : `is not JSON: ${errorMessage(e).replace(/^job data: not valid JSON: /, '').slice(0, 200)}`;
      }
    }
    if (problem === undefined) return super.createJob(json, jobId);
    return super.createJob({ ...json, data: JSON.stringify({ [UNREADABLE_DATA]: problem, code }) }, jobId);
  }

  protected override async moveToActive(token: string, name?: string): Promise<Job> {
    try {
      return await super.moveToActive(token, name);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      const repaired = await this.limits.repair().catch(() => 0);
      this.emit('error', new Error(`a job in Redis had options BullMQ cannot read (${e.message.slice(0, 100)}); ${repaired} such job(s) reset to run as plain jobs`));
      return undefined as unknown as Job;
    }
  }
}

/**
 * Resets the BullMQ fields that must be JSON (opts, progress) of active jobs where they are not,
 * and drops those jobs' locks so stall detection hands them back. Returns how many were reset.
 */
async function repairActiveJobs(redis: Redis, keyPrefix: string): Promise<number> {
  const active = await redis.lrange(`${keyPrefix}active`, 0, 9999);
  if (active.length === 0) return 0;
  const read = redis.pipeline();
  for (const id of active) read.hmget(`${keyPrefix}${id}`, 'opts', 'progress');
  const replies = (await read.exec()) ?? [];
  const parses = (text: string | null) => {
    if (text === null) return true;
    try {
      JSON.parse(text);
      return true;
    } catch {
      return false;
    }
  };
  let repaired = 0;
  for (let i = 0; i < active.length; i++) {
    const [error, fields] = replies[i] ?? [];
    if (error || !Array.isArray(fields)) continue;
    const [opts, progress] = fields as Array<string | null>;
    const reset: Record<string, string> = {};
    if (!parses(opts)) reset.opts = '{}';
    if (!parses(progress)) reset.progress = '0';
    if (Object.keys(reset).length === 0) continue;
    await redis.hset(`${keyPrefix}${active[i]}`, reset);
    await redis.del(`${keyPrefix}${active[i]}:lock`);
    repaired++;
  }
  return repaired;
}

/** How long a closing worker with no job in hand waits for BullMQ's own close before forcing it. */
const CLOSE_GRACE_MS = 5000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/**
 * Job data up to twice an image of --max-bytes as base64 (at least 32 MiB), and this, is parsed
 * (an image over the limit is then refused by name); larger data is refused unread. The name,
 * options and paths take far less.
 */
const DATA_SLACK = 1024 * 1024;

export class DetectionWorker {
  readonly id: string;
  readonly queueName: string;
  readonly concurrency: number;
  readonly detector: Detector;
  private readonly worker: Worker;
  private readonly batcher: Batcher;
  private readonly heartbeat: Heartbeat;
  private readonly redis: Redis;
  private readonly workerRedis: Redis;
  private readonly counts: WorkerCounts = { completed: 0, failed: 0, retried: 0 };
  private readonly ownsDetector: boolean;
  private readonly policy: SourcePolicy;
  private readonly log: (line: string) => void;
  private closing: Promise<void> | undefined;

  private constructor(init: { id: string; queue: string; detector: Detector; ownsDetector: boolean; concurrency: number; policy: SourcePolicy; worker: (processor: (job: Job) => Promise<JobResult>) => Worker; redis: Redis; workerRedis: Redis; heartbeat: Heartbeat; log: (line: string) => void; batchWaitMs: number }) {
    this.id = init.id;
    this.queueName = init.queue;
    this.detector = init.detector;
    this.ownsDetector = init.ownsDetector;
    this.concurrency = init.concurrency;
    this.policy = init.policy;
    this.redis = init.redis;
    this.workerRedis = init.workerRedis;
    this.heartbeat = init.heartbeat;
    this.log = init.log;
    this.batcher = new Batcher(init.detector, init.batchWaitMs);
    this.worker = init.worker((job) => this.process(job));
    let lastError = '';
    this.worker.on('error', (e) => {
      // Connection trouble repeats while Redis is away: say it once.
      if (e.message !== lastError) this.log(`deimv2 worker: ${errorMessage(e)}`);
      lastError = e.message;
    });
    this.worker.on('ready', () => (lastError = ''));
    this.worker.on('failed', (job, e) => {
      if (!job) return;
      const final = e instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      if (final) {
        this.counts.failed++;
        this.heartbeat.record(false);
      } else this.counts.retried++;
      this.log(`deimv2 worker: job ${job.id} ${final ? 'failed' : `failed attempt ${job.attemptsMade}, will retry`}: ${e.message}`);
    });
    this.worker.on('completed', () => {
      this.counts.completed++;
      this.heartbeat.record(true);
    });
  }

  static async start(options: DetectionWorkerOptions): Promise<DetectionWorker> {
    const target = checkRedisTarget(options.redis);
    const queue = checkQueueName(options.queue);
    const prefix = options.prefix ?? 'bull';
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!Number.isInteger(maxBytes) || maxBytes < 1) throw new DeimError('ERR_INVALID_ARGUMENT', `maxBytes must be a positive integer, got ${options.maxBytes}`);
    const urlTimeoutMs = options.urlTimeoutMs ?? 15_000;
    const policy: SourcePolicy = { allowDirs: await resolveAllowDirs(options.allowDirs ?? []), maxBytes, urlTimeoutMs };
    for (const [name, v] of Object.entries({ concurrency: options.concurrency, lockDuration: options.lockDuration, stalledInterval: options.stalledInterval, maxStalledCount: options.maxStalledCount })) {
      if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new DeimError('ERR_INVALID_ARGUMENT', `${name} must be a positive integer, got ${v}`, { input: String(v) });
    }
    const log = options.log ?? (() => {});
    const id = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;

    // Reach Redis before loading a model, so a wrong URL fails fast.
    const redis = createRedis(target, `deimv2-worker-${id}`);
    try {
      await waitForRedis(redis, target.url);
    } catch (e) {
      redis.disconnect();
      throw e;
    }
    let detector: Detector;
    try {
      detector = options.detector ?? (await Detector.create(options.detectorOptions ?? {}));
    } catch (e) {
      redis.disconnect();
      throw e;
    }
    // One model a queue: a job's result must be the same whichever worker takes it, so a worker
    // refuses a queue that a live worker of another model already serves.
    const model = detector.spec.variant ?? path.basename(detector.modelPath);
    const other = (await readWorkers(redis, workersKey(prefix, queue))).live.find((w) => w.model !== model);
    if (other) {
      if (!options.detector) await detector.close();
      redis.disconnect();
      throw new DeimError('ERR_QUEUE', `queue "${queue}" is served by worker ${other.id} with model ${other.model}; this worker runs ${model}: give each model its own queue (--queue), so every result comes from the model its submitter expects`);
    }
    const stats = detector.stats();
    const concurrency = options.concurrency ?? 4 * stats.runners * detector.batchSize + 2;
    const heartbeat = new Heartbeat(redis, workersKey(prefix, queue), {
      id,
      host: os.hostname(),
      pid: process.pid,
      model: detector.spec.variant ?? path.basename(detector.modelPath),
      backend: detector.backendLabel,
      concurrency,
    });
    // BullMQ leaves a connection it was given open (its blocking duplicate it closes itself).
    const workerRedis = createRedis(target, `deimv2-worker-${id}`);
    const self = new DetectionWorker({
      id,
      queue,
      detector,
      ownsDetector: options.detector === undefined,
      concurrency,
      policy,
      redis,
      workerRedis,
      heartbeat,
      log,
      batchWaitMs: options.batchWaitMs ?? 2,
      worker: (processor) =>
        new GuardedWorker(
          queue,
          processor,
          {
            connection: workerRedis,
            prefix,
            name: id,
            concurrency,
            lockDuration: options.lockDuration ?? 30_000,
            stalledInterval: options.stalledInterval ?? 30_000,
            maxStalledCount: options.maxStalledCount ?? 3,
            autorun: true,
          },
          { maxDataChars: Math.max(2 * Math.ceil(maxBytes / 3) * 4, 32 * 1024 * 1024) + DATA_SLACK, maxBytes, repair: () => repairActiveJobs(redis, `${prefix}:${queue}:`) },
        ),
    });
    await self.worker.waitUntilReady();
    heartbeat.start();
    log(
      `deimv2 worker ${id}: ${self.detector.spec.variant ?? path.basename(self.detector.modelPath)} on ${self.detector.backendLabel} (${self.detector.description}), ` +
        `queue "${queue}" at ${redactRedisUrl(target.url)}, ${concurrency} jobs in flight, ` +
        `${policy.allowDirs.length ? `paths under ${policy.allowDirs.join(', ')}` : 'no path jobs (no --allow-dir)'}, max ${maxBytes} bytes`,
    );
    return self;
  }

  /** Jobs finished by this worker (final failures only in `failed`; `retried` counts attempts that will run again). */
  stats(): WorkerCounts {
    return { ...this.counts };
  }

  /** Finishes the jobs in hand, takes no new ones, then frees the detector and Redis connections. */
  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }

  private async shutdown(): Promise<void> {
    // BullMQ's close waits for its blocking fetch, which can hang for a long time (over 40 s
    // seen) on a connection that is reconnecting after a Redis outage. So once no job is in hand
    // it gets CLOSE_GRACE_MS more, and is then forced (nothing in hand is lost: a job is only
    // in hand while process() runs).
    const graceful = this.worker.close();
    let idleSince: number | undefined;
    for (;;) {
      const done = await Promise.race([graceful.then(() => true), sleep(200).then(() => false)]);
      if (done) break;
      if (this.inHand > 0) idleSince = undefined;
      else if ((idleSince ??= Date.now()) + CLOSE_GRACE_MS <= Date.now()) {
        this.log('deimv2 worker: no job in hand, but BullMQ has not closed (Redis reconnecting?): closing without it');
        await Promise.race([this.worker.close(true).catch(() => {}), sleep(2000)]);
        break;
      }
    }
    await this.heartbeat.stop();
    if (this.ownsDetector) await this.detector.close();
    for (const client of [this.workerRedis, this.redis]) {
      if (client.status === 'ready') await Promise.race([client.quit().catch(() => client.disconnect()), sleep(2000)]);
      client.disconnect();
    }
  }

  private inHand = 0;

  private async process(job: Job): Promise<JobResult> {
    this.inHand++;
    try {
      return await this.run(job);
    } finally {
      this.inHand--;
    }
  }

  private async run(job: Job): Promise<JobResult> {
    let data: JobData | undefined;
    try {
      data = checkJobData(job.data);
      const opened = await openJobImage(data.image, data.name, this.policy);
      const target = data.options.annotate !== undefined ? await checkOutputPath(data.options.annotate, opened.realPath, this.policy) : undefined;
      const detectOptions: DetectOptions = {
        ...(data.options.threshold !== undefined ? { threshold: data.options.threshold } : {}),
        ...(data.options.classes !== undefined ? { classes: data.options.classes } : {}),
        ...(data.options.maxDetections !== undefined ? { maxDetections: data.options.maxDetections } : {}),
        ...(target !== undefined ? { returnImage: true } : {}),
      };
      const entry = await this.batcher.run(opened.input, detectOptions);
      if ('error' in entry) {
        // The detector names its input (the real path, or "(buffer of N bytes)"): name the job's image instead.
        const shown = typeof opened.input === 'string' ? opened.input : `(buffer of ${opened.input.length} bytes)`;
        throw new DeimError(entry.error.code as DeimError['code'], entry.error.message.split(shown).join(data.name), { input: data.name });
      }
      const result: JobResult = {
        file: data.name,
        width: entry.width,
        height: entry.height,
        detections: entry.detections,
        model: this.detector.spec.variant ?? path.basename(this.detector.modelPath),
        backend: this.detector.backendLabel,
      };
      if (target !== undefined && entry.image) {
        drawDetections(entry.image, entry.detections);
        await writeAtomically(entry.image, target);
        result.annotated = target;
      }
      return result;
    } catch (e) {
      throw jobError(e);
    }
  }
}

/** Writes beside the target and renames over it: a reader never sees half a file, and a symlink at the target is replaced, not followed. */
async function writeAtomically(image: NonNullable<DetectorResult['image']>, target: string): Promise<void> {
  const ext = path.extname(target);
  const temp = path.join(path.dirname(target), `.${path.basename(target, ext)}.${randomBytes(4).toString('hex')}.partial${ext}`);
  try {
    await writeAnnotatedImage(image, temp);
    await rename(temp, target);
  } catch (e) {
    await rm(temp, { force: true }).catch(() => {});
    if (e instanceof DeimError) throw e;
    throw new DeimError('ERR_OUTPUT_WRITE', `cannot write ${target}: ${errorMessage(e)}`, { input: target });
  }
}

/** Bad input -> UnrecoverableError (fails once); anything else -> a plain Error (retried). */
function jobError(e: unknown): Error {
  const code = e instanceof DeimError ? e.code : typeof (e as { code?: unknown })?.code === 'string' && /^ERR_[A-Z_]+$/.test((e as { code: string }).code) ? (e as { code: string }).code : 'ERR_QUEUE';
  // Stored reasons reach logs and terminals: paths and URLs from a job lose their control characters.
  const reason = encodeFailure(code, errorMessage(e).replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '?'));
  return PERMANENT_CODES.has(code) && !isTransient(e) ? new UnrecoverableError(reason) : new Error(reason);
}

export function checkQueueName(queue: unknown): string {
  if (typeof queue !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(queue)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `queue name must be 1-100 letters, digits, '_', '.' or '-', got ${JSON.stringify(queue)}`, { input: String(queue) });
  }
  return queue;
}
