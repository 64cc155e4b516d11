/**
 * The CPU 'pool' runner (the default): one single-thread onnxruntime session per core in worker
 * threads, each decoding, resizing and running its own images, fed from one queue: the highest
 * throughput for folders, batches and video (these models are small, so intra-op threads barely
 * help them). Workers start on demand, so one image is served by one session.
 */
import { WorkerPool } from '../../pool/worker-pool.js';
import type { Runner, RunnerSetup } from '../runner.js';

const INFER_WORKER = new URL('./infer-worker.js', import.meta.url);

export async function openCpuPoolRunner(setup: RunnerSetup): Promise<Runner> {
  const pool = await WorkerPool.create({
    worker: INFER_WORKER,
    init: { budget: setup.budget.shared, stage: { modelPath: setup.model.path, threads: 1 } },
    size: setup.threads,
  });
  try {
    const spec = setup.specOf(pool.io!);
    pool.configure({ spec, resize: setup.resize, classes: setup.classes });
    return {
      backend: 'cpu',
      description: `${pool.size} x ${pool.description} (pool)`,
      spec,
      parallelism: pool.size,
      async run(sources, post) {
        const output = await pool.run(sources, post);
        if (output.kind !== 'detections') throw new Error(`unexpected ${output.kind} output from a CPU pool worker`);
        return { results: output.results, timing: output.timing };
      },
      close: () => pool.close(),
    };
  } catch (e) {
    await pool.close();
    throw e;
  }
}
