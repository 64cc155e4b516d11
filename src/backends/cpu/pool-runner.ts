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
import { WorkerPool } from '../../pool/worker-pool.js';
import type { Runner, RunnerSetup } from '../runner.js';
import { openCpuSingleRunner } from './single-runner.js';

const INFER_WORKER = new URL('./infer-worker.js', import.meta.url);

export async function openCpuPoolRunner(setup: RunnerSetup): Promise<Runner> {
  // The first session may use every core while it is alone (it serves single images fastest).
  const first = await openCpuSingleRunner({ ...setup, threads: Math.min(setup.threads, os.availableParallelism()) });
  let firstBusy = 0;
  let pool: Promise<WorkerPool | undefined> | undefined;
  let ready: WorkerPool | undefined;
  let closed = false;

  const startPool = () => (pool ??= WorkerPool.create({
    worker: INFER_WORKER,
    init: { budget: setup.budget.shared, stage: { modelPath: setup.model.path, threads: 1 } },
    size: setup.threads,
  }).then(
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
    description: `${setup.threads} x ${first.description.replace(/, \d+ threads? \(single\)$/, '')}, 1 thread (pool)`,
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
