/**
 * The CPU 'single' runner: one onnxruntime session using every core, on the main thread's side,
 * for the lowest latency of one call at a time; a worker decodes and preprocesses.
 */
import { postprocessOptions, toDetections } from '../../postprocess/detections.js';
import type { DetectedImage } from '../../pool/messages.js';
import { WorkerPool } from '../../pool/worker-pool.js';
import type { Runner, RunnerSetup } from '../runner.js';

const TENSOR_WORKER = new URL('../../pool/tensor-worker.js', import.meta.url);

export async function openCpuSingleRunner(setup: RunnerSetup): Promise<Runner> {
  // The worker starts first (its thread loads the decoder) while this one loads onnxruntime and the model.
  const worker = WorkerPool.create({ worker: TENSOR_WORKER, init: { budget: setup.budget.shared }, size: 1 });
  const [p, s] = await Promise.allSettled([
    worker,
    import('./session.js').then(({ CpuSession }) => CpuSession.create(setup.model.path, { threads: setup.threads })),
  ]);
  if (s.status === 'rejected' || p.status === 'rejected') {
    await Promise.all([s.status === 'fulfilled' ? s.value.close() : undefined, p.status === 'fulfilled' ? p.value.close() : undefined]);
    throw s.status === 'rejected' ? s.reason : (p as PromiseRejectedResult).reason;
  }
  const session = s.value, pool = p.value;
  try {
    const spec = setup.specOf(session.io);
    pool.configure({ spec, resize: setup.resize, classes: setup.classes });
    return {
      backend: 'cpu',
      description: `${session.description} (single)`,
      spec,
      parallelism: 1,
      async run(sources, post) {
        const output = await pool.run(sources, post);
        if (output.kind !== 'tensor') throw new Error(`unexpected ${output.kind} output from a preprocessing worker`);
        const n = output.slots.filter((s) => !('error' in s)).length;
        if (n === 0) return { results: output.slots as DetectedImage[], timing: output.timing };
        const sizes = new Int32Array(2 * n);
        for (const s of output.slots) {
          if ('error' in s) continue;
          sizes[2 * s.index] = s.transform.frameWidth;
          sizes[2 * s.index + 1] = s.transform.frameHeight;
        }
        const t0 = performance.now();
        const raw = await session.run({ images: output.images, sizes, batch: n });
        const inferMs = performance.now() - t0;
        const postprocess = postprocessOptions(post, setup.classes);
        const results = output.slots.map((s, i): DetectedImage => {
          if ('error' in s) return s;
          const image = output.decoded?.[i];
          return {
            ...(s.file !== undefined ? { file: s.file } : {}),
            width: s.transform.imageWidth,
            height: s.transform.imageHeight,
            detections: toDetections(raw, s.index, s.transform, postprocess),
            ...(image ? { image } : {}),
          };
        });
        return { results, timing: { inferMs, preprocessMs: output.timing.preprocessMs } };
      },
      close: async () => {
        await Promise.all([pool.close(), session.close()]);
      },
    };
  } catch (e) {
    await Promise.all([pool.close(), session.close()]);
    throw e;
  }
}
