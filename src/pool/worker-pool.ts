/**
 * A fixed set of worker threads fed from one queue. Each worker holds at most `depth` tasks so
 * that one is decoding while another is in inference; the rest wait here, so memory stays bounded
 * however many calls are made at once.
 */
import { Worker } from 'node:worker_threads';
import { DeimError } from '../errors.js';
import type { ModelIO } from '../backends/types.js';
import type { FromWorker, PostOptions, SerializedError, TaskConfig, TaskOutput, TaskSource, ToWorker, WorkerInit } from './messages.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);

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
  init: WorkerInit;
  size: number;
  /** Tasks a worker holds at once (decoding ahead of inference). */
  depth?: number;
}

function toError(e: SerializedError): DeimError {
  return new DeimError(e.code as DeimError['code'], e.message, e.input !== undefined ? { input: e.input } : {});
}

export class WorkerPool {
  readonly size: number;
  /** The model's inputs/outputs as the first worker read them (infer mode). */
  readonly io: ModelIO | undefined;
  readonly description: string | undefined;
  private readonly slots: Slot[];
  private readonly waiting: Job[] = [];
  private readonly depth: number;
  private nextId = 1;
  private closed = false;

  private constructor(slots: Slot[], depth: number, io: ModelIO | undefined, description: string | undefined) {
    this.slots = slots;
    this.size = slots.length;
    this.depth = depth;
    this.io = io;
    this.description = description;
    for (const slot of slots) {
      slot.worker.on('message', (m: FromWorker) => this.onMessage(slot, m));
      slot.worker.on('error', (e) => this.onCrash(slot, e));
      slot.worker.on('exit', (code) => {
        if (!this.closed) this.onCrash(slot, new Error(`worker exited with code ${code}`));
      });
      slot.worker.unref();
    }
  }

  static async create(options: PoolOptions): Promise<WorkerPool> {
    const size = Math.max(1, Math.floor(options.size));
    const started = Array.from({ length: size }, () => startWorker(options.init));
    const settled = await Promise.allSettled(started);
    const failed = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) {
      await Promise.all(settled.map((s) => (s.status === 'fulfilled' ? s.value.worker.terminate() : undefined)));
      throw failed.reason;
    }
    const ready = settled.map((s) => (s as PromiseFulfilledResult<{ worker: Worker; io?: ModelIO; description?: string }>).value);
    const slots = ready.map(({ worker }) => ({ worker, inFlight: new Map<number, Job>() }));
    return new WorkerPool(slots, options.depth ?? 2, ready[0]!.io, ready[0]!.description);
  }

  configure(config: TaskConfig): void {
    for (const slot of this.slots) slot.worker.postMessage({ type: 'configure', config } satisfies ToWorker);
  }

  run(items: TaskSource[], post: PostOptions): Promise<TaskOutput> {
    if (this.closed) return Promise.reject(new DeimError('ERR_CLOSED', 'the detector is closed'));
    return new Promise((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, items, post, resolve, reject });
      this.dispatch();
    });
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.waiting.length + this.slots.reduce((n, s) => n + s.inFlight.size, 0);
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let best: Slot | undefined;
      for (const s of this.slots) if (s.inFlight.size < this.depth && (!best || s.inFlight.size < best.inFlight.size)) best = s;
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
    if (this.slots.length === 0) {
      this.closed = true;
      for (const job of this.waiting.splice(0)) job.reject(err);
    } else {
      this.dispatch();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new DeimError('ERR_CLOSED', 'the detector was closed before this image was processed');
    for (const job of this.waiting.splice(0)) job.reject(err);
    await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            slot.worker.ref();
            slot.worker.once('exit', () => resolve());
            slot.worker.postMessage({ type: 'close' } satisfies ToWorker);
            // A worker stuck in native code is not waited on forever.
            setTimeout(() => void slot.worker.terminate(), 5000).unref();
          }),
      ),
    );
    for (const slot of this.slots) for (const id of [...slot.inFlight.keys()]) this.settle(slot, id)?.reject(err);
  }
}

function startWorker(init: WorkerInit): Promise<{ worker: Worker; io?: ModelIO; description?: string }> {
  return new Promise((resolve, reject) => {
    // execArgv: [] so flags of the parent (e.g. `node --input-type=module -e`) do not break workers.
    const worker = new Worker(WORKER_URL, { workerData: init, execArgv: [] });
    const onMessage = (m: FromWorker) => {
      if (m.type === 'ready') {
        cleanup();
        resolve({ worker, ...(m.io ? { io: m.io } : {}), ...(m.description ? { description: m.description } : {}) });
      } else if (m.type === 'init-error') {
        cleanup();
        void worker.terminate();
        reject(toError(m.error));
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
