/**
 * The CPU 'pool' runner (the default): one single-thread onnxruntime session per core in worker
 * threads, each decoding, resizing and running its own images, fed from one queue: the highest
 * throughput for folders, batches and video (these models are small, so intra-op threads barely
 * help them).
 * Small jobs do not pay for a pool: the runner opens with one session on this thread's side (the
 * single runner: its preprocessing worker starts while the model loads), which serves work while
 * it is idle; the per-core workers start only once work queues up, and take the rest from then on.
 */
import os from 'node:os';
import { WorkerPool, type PoolOptions } from '../../pool/worker-pool.js';
import type { Runner, RunnerSetup } from '../runner.js';
import type { PostOptions, TaskSource } from '../../pool/messages.js';
import { expectedSpec, openCpuSingleRunner, sameSources, sameSpec } from './single-runner.js';

const INFER_WORKER = new URL('./infer-worker.js', import.meta.url);

export async function openCpuPoolRunner(setup: RunnerSetup): Promise<Runner> {
  // A run known to have more images than its first call (setup.preload without alone: a folder)
  // starts the per-core workers at once and only them: a first session would load the model once
  // more and run the first images on threads the workers' start-up needs.
  if (setup.preload && setup.preload.alone !== true && setup.threads > 1) return openWorkersOnly(setup);
  // The first session may use every core while it is alone (it serves single images fastest).
  const first = await openCpuSingleRunner({ ...setup, threads: Math.min(setup.threads, os.availableParallelism()) });
  let firstBusy = 0;
  let pool: Promise<WorkerPool | undefined> | undefined;
  let ready: WorkerPool | undefined;
  let closed = false;

  const startPool = () => (pool ??= WorkerPool.create(poolOptions(setup)).then(
    (p) => {
      if (closed) return p.close().then(() => undefined);
      p.configure({ spec: first.spec, resize: setup.resize, classes: setup.classes });
      return (ready = p);
    },
    // The first session goes on serving everything when the workers cannot start.
    () => undefined,
  ));

  const runFirst: Runner['run'] = async (sources, post) => {
    firstBusy++;
    try {
      return await first.run(sources, post);
    } finally {
      firstBusy--;
    }
  };

  return {
    backend: 'cpu',
    description: describe(setup, first.description),
    spec: first.spec,
    parallelism: setup.threads,
    async run(sources, post) {
      // Until the workers are up, the first session takes everything (queued in its worker).
      if (!ready) {
        if (firstBusy > 0 && setup.threads > 1) void startPool();
        return runFirst(sources, post);
      }
      const output = await ready.run(sources, post);
      if (output.kind !== 'detections') throw new Error(`unexpected ${output.kind} output from a CPU pool worker`);
      return { results: output.results, timing: output.timing };
    },
    async close() {
      closed = true;
      const workers = pool ? await pool : undefined;
      await Promise.all([first.close(), workers?.close()]);
    },
  };
}

function poolOptions(setup: RunnerSetup): PoolOptions {
  return { worker: INFER_WORKER, init: { budget: setup.budget.shared, stage: { modelPath: setup.model.path, threads: 1 } }, size: setup.threads };
}

function describe(setup: RunnerSetup, sessionDescription: string): string {
  return `${setup.threads} x ${sessionDescription.replace(/, \d+ threads?( \(single\))?$/, '')}, 1 thread (pool)`;
}

/** The pool alone, every worker started at once (see openCpuPoolRunner). */
async function openWorkersOnly(setup: RunnerSetup): Promise<Runner> {
  // The preloaded images go to the first worker as it starts (with the spec the variant implies,
  // used only if the graph agrees): detected while the other workers load the model.
  const expected = expectedSpec(setup);
  const preload = setup.preload;
  const first = expected && preload?.post && preload.sources.length > 0 ? { config: { spec: expected, resize: setup.resize, classes: setup.classes }, items: preload.sources, post: preload.post } : undefined;
  const pool = await WorkerPool.create({ ...poolOptions(setup), eager: true, ...(first ? { first } : {}) });
  let spec: Runner['spec'];
  try {
    spec = setup.specOf(pool.io!);
  } catch (e) {
    await pool.close();
    throw e;
  }
  pool.configure({ spec, resize: setup.resize, classes: setup.classes });
  // As with the single runner, the files were read before the caller gets the Detector.
  if (pool.firstOutput) await Promise.allSettled([pool.firstOutput]);
  let preloaded = first && pool.firstOutput && sameSpec(spec, expected) ? pool.firstOutput : undefined;
  const takePreloaded = (sources: TaskSource[], post: PostOptions) => {
    const p = preloaded;
    preloaded = undefined;
    return p && first && sameSources(first.items, sources) && JSON.stringify(first.post) === JSON.stringify(post) ? p : undefined;
  };
  return {
    backend: 'cpu',
    description: describe(setup, pool.description ?? 'onnxruntime-node CPU'),
    spec,
    parallelism: setup.threads,
    async run(sources, post) {
      const output = await (takePreloaded(sources, post) ?? pool.run(sources, post));
      if (output.kind !== 'detections') throw new Error(`unexpected ${output.kind} output from a CPU pool worker`);
      return { results: output.results, timing: output.timing };
    },
    close: () => pool.close(),
  };
}
