/**
 * A set of worker threads fed from one queue. Each worker holds at most `depth` tasks so that one
 * is decoding while another is being worked on; the rest wait here. The pool starts one worker and
 * adds the others only when work queues up, so one image never pays for a whole pool. close()
 * always settles within a bounded time: a worker that does not exit after a grace period (a decode
 * stuck in native code) is terminated, and is not waited on past a second bound.
 */
import { Worker } from 'node:worker_threads';
import { DeimError } from '../errors.js';
import type { ModelIO } from '../backends/types.js';
import type { FromWorker, PostOptions, SerializedError, TaskConfig, TaskOutput, TaskSource, ToWorker, WorkerInit } from './messages.js';

interface Job {
  id: number;
  items: TaskSource[];
  post: PostOptions;
  resolve: (o: TaskOutput) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Job>;
}

export interface PoolOptions {
  /** The worker's entry file (a module calling runWorker). */
  worker: URL;
  init: WorkerInit;
  /** Most workers. */
  size: number;
  /** Tasks a worker holds at once (decoding ahead of the current one). */
  depth?: number;
  /** Start every worker at once instead of on demand. */
  eager?: boolean;
  /** Milliseconds close() waits for workers to finish before terminating them; default 2000. */
  closeGraceMs?: number;
  /**
   * A task posted to the first worker the moment it is spawned, with its configuration: the worker
   * works on it while it starts and while this thread is busy (loading a model); its output is
   * `firstOutput`. Later tasks need configure() first, as usual.
   */
  first?: { config: TaskConfig; items: TaskSource[]; post: PostOptions };
}

function toError(e: SerializedError): DeimError {
  return new DeimError(e.code as DeimError['code'], e.message, e.input !== undefined ? { input: e.input } : {});
}

/** Whether `p` settled within `ms` (the timer holds the process meanwhile and is cleared after). */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]).finally(() => clearTimeout(timer));
}

export class WorkerPool {
  /** Most workers (they start on demand). */
  readonly size: number;
  /** What the first worker's stage reported (e.g. the model's inputs/outputs). */
  readonly io: ModelIO | undefined;
  /** The output of options.first (undefined without one). */
  readonly firstOutput: Promise<TaskOutput> | undefined;
  readonly description: string | undefined;
  private readonly slots: Slot[] = [];
  private readonly starting = new Set<Promise<unknown>>();
  private readonly waiting: Job[] = [];
  private readonly depth: number;
  private config: TaskConfig | undefined;
  private nextId = 1;
  private closed = false;
  private failure: Error | undefined;
  /** False once a worker failed to start: the pool works on with the workers it has. */
  private canGrow = true;

  private constructor(private readonly options: PoolOptions, first: StartedWorker) {
    this.size = Math.max(1, Math.floor(options.size));
    this.depth = options.depth ?? 2;
    this.io = first.io;
    this.description = first.description;
    const slot = this.adopt(first.worker);
    if (options.first) {
      this.config = options.first.config;
      const { items, post } = options.first;
      this.firstOutput = new Promise((resolve, reject) => slot.inFlight.set(FIRST_TASK_ID, { id: FIRST_TASK_ID, items, post, resolve, reject }));
      this.firstOutput.catch(() => undefined); // its reader reports it
      slot.worker.ref();
    }
    for (const m of first.early) this.onMessage(slot, m);
  }

  static async create(options: PoolOptions): Promise<WorkerPool> {
    // eager: every worker starts at once (one per core, so their start-ups overlap instead of queueing).
    const first = startWorker(options.worker, options.init, options.first);
    const others = options.eager ? Array.from({ length: Math.max(1, Math.floor(options.size)) - 1 }, () => startWorker(options.worker, options.init)) : [];
    let pool: WorkerPool;
    try {
      pool = new WorkerPool(options, await first);
    } catch (e) {
      for (const p of others) p.then(({ worker }) => void worker.terminate(), () => undefined);
      throw e;
    }
    await Promise.all(others.map((p) => pool.track(p)));
    return pool;
  }

  configure(config: TaskConfig): void {
    this.config = config;
    for (const slot of this.slots) slot.worker.postMessage({ type: 'configure', config } satisfies ToWorker);
  }

  run(items: TaskSource[], post: PostOptions): Promise<TaskOutput> {
    if (this.closed) return Promise.reject(this.failure ?? new DeimError('ERR_CLOSED', 'the detector is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, items, post, resolve, reject });
      this.dispatch();
    });
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.waiting.length + this.slots.reduce((n, s) => n + s.inFlight.size, 0);
  }

  /** Workers started so far. */
  get started(): number {
    return this.slots.length;
  }

  private adopt(worker: Worker): Slot {
    const slot: Slot = { worker, inFlight: new Map() };
    this.slots.push(slot);
    worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
    worker.on('error', (e) => this.onCrash(slot, e));
    worker.on('exit', (code) => {
      if (!this.closed) this.onCrash(slot, new Error(`worker exited with code ${code}`));
    });
    worker.unref();
    if (this.config) worker.postMessage({ type: 'configure', config: this.config } satisfies ToWorker);
    return slot;
  }

  /** Starts up to `n` more workers (never past `size`); a worker that fails to start is only reported when none runs. */
  private async grow(n: number): Promise<void> {
    const room = this.canGrow ? this.size - this.slots.length - this.starting.size : 0;
    await Promise.all(Array.from({ length: Math.min(n, room) }, () => this.track(startWorker(this.options.worker, this.options.init))));
  }

  /** Adopts a starting worker once it is ready (counted in `starting` meanwhile). */
  private track(starting: Promise<StartedWorker>): Promise<void> {
    let failed: Error | undefined;
    const p: Promise<void> = starting.then(
      ({ worker }) => {
        if (this.closed) void worker.terminate();
        else this.adopt(worker);
      },
      (e: Error) => {
        failed = e;
        this.canGrow = false;
      },
    ).finally(() => {
      this.starting.delete(p);
      if (this.closed) return;
      // No worker left and none starting: the queue would wait forever (and retry forever).
      if (failed && this.slots.length === 0 && this.starting.size === 0) this.fail(failed);
      else if (!failed) this.dispatch();
    });
    this.starting.add(p);
    return p;
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let best: Slot | undefined;
      for (const s of this.slots) if (s.inFlight.size < this.depth && (!best || s.inFlight.size < best.inFlight.size)) best = s;
      // Busy: more workers start while the queue waits (one task each keeps one worker busy).
      if (!best || best.inFlight.size > 0) void this.grow(this.waiting.length);
      if (!best) return;
      const job = this.waiting.shift()!;
      if (best.inFlight.size === 0) best.worker.ref();
      best.inFlight.set(job.id, job);
      best.worker.postMessage({ type: 'task', id: job.id, items: job.items, post: job.post } satisfies ToWorker);
    }
  }

  private settle(slot: Slot, id: number): Job | undefined {
    const job = slot.inFlight.get(id);
    slot.inFlight.delete(id);
    if (slot.inFlight.size === 0) slot.worker.unref();
    return job;
  }

  private onMessage(slot: Slot, m: FromWorker): void {
    if (m.type === 'result') this.settle(slot, m.id)?.resolve(m.output);
    else if (m.type === 'task-error') this.settle(slot, m.id)?.reject(toError(m.error));
    this.dispatch();
  }

  private onCrash(slot: Slot, e: Error): void {
    const err = new DeimError('ERR_BACKEND_FAILED', `a detector worker failed: ${e.message}`, { cause: e });
    for (const id of [...slot.inFlight.keys()]) this.settle(slot, id)?.reject(err);
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    if (this.slots.length === 0 && this.starting.size === 0) this.fail(err);
    else this.dispatch();
  }

  /** No worker can run: every queued job and every later run() gets `err`. */
  private fail(err: Error): void {
    this.closed = true;
    this.failure = err;
    for (const job of this.waiting.splice(0)) job.reject(err);
  }

  /** Rejects queued and running work, asks workers to exit, terminates those still running after the grace period. */
  async close(): Promise<void> {
    if (this.closed && this.slots.length === 0) return;
    this.closed = true;
    const err = new DeimError('ERR_CLOSED', 'the detector was closed before this image was processed');
    for (const job of this.waiting.splice(0)) job.reject(err);
    const grace = this.options.closeGraceMs ?? 2000;
    await Promise.all(
      this.slots.splice(0).map(async (slot) => {
        for (const id of [...slot.inFlight.keys()]) this.settle(slot, id)?.reject(err);
        const exited = new Promise<void>((resolve) => slot.worker.once('exit', () => resolve()));
        slot.worker.postMessage({ type: 'close' } satisfies ToWorker);
        if (await within(exited, grace)) return;
        void slot.worker.terminate().catch(() => undefined);
        // A worker whose native work outlives terminate() is unref'd and does not hold the process.
        await within(exited, grace);
        slot.worker.unref();
      }),
    );
  }
}

/** The id of PoolOptions.first (run() numbers its tasks from 1). */
const FIRST_TASK_ID = 0;

interface StartedWorker {
  worker: Worker;
  io?: ModelIO;
  description?: string;
  /** Messages that came before 'ready' (the first task's result, if it was that quick). */
  early: FromWorker[];
}

function startWorker(url: URL, init: WorkerInit, first?: PoolOptions['first']): Promise<StartedWorker> {
  return new Promise((resolve, reject) => {
    // execArgv: [] so flags of the parent (e.g. `node --input-type=module -e`) do not break workers.
    const worker = new Worker(url, { workerData: init, execArgv: [] });
    // Posted now: the worker's port holds them until its loop listens.
    if (first) {
      worker.postMessage({ type: 'configure', config: first.config } satisfies ToWorker);
      worker.postMessage({ type: 'task', id: FIRST_TASK_ID, items: first.items, post: first.post } satisfies ToWorker);
    }
    const early: FromWorker[] = [];
    const onMessage = (m: FromWorker) => {
      if (m.type === 'ready') {
        cleanup();
        resolve({ worker, early, ...(m.io ? { io: m.io } : {}), ...(m.description ? { description: m.description } : {}) });
      } else if (m.type === 'init-error') {
        cleanup();
        void worker.terminate();
        reject(toError(m.error));
      } else {
        early.push(m);
      }
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new DeimError('ERR_BACKEND_FAILED', `detector worker failed to start: ${e.message}`, { cause: e }));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}
