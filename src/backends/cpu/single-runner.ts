/**
 * The CPU 'single' runner: one onnxruntime session using every core, on the main thread's side,
 * for the lowest latency of one call at a time; a worker decodes and preprocesses.
 */
import { postprocessOptions, toDetections } from '../../postprocess/detections.js';
import type { ModelSpec } from '../../models/model-spec.js';
import type { DetectedImage, PostOptions, TaskSource } from '../../pool/messages.js';
import { WorkerPool } from '../../pool/worker-pool.js';
import type { Runner, RunnerSetup } from '../runner.js';

const TENSOR_WORKER = new URL('../../pool/tensor-worker.js', import.meta.url);

/** The spec the model's name and the options give, before its graph is read (undefined when only the graph can say). */
function expectedSpec(setup: RunnerSetup): ModelSpec | undefined {
  try {
    return setup.specOf({ inputSize: undefined, inputNames: [], outputNames: [] });
  } catch {
    return undefined;
  }
}

export async function openCpuSingleRunner(setup: RunnerSetup): Promise<Runner> {
  // The worker starts first (its thread loads the decoder) while this one loads onnxruntime and the
  // model; the images of setup.preload go with it, so they are decoded and resized meanwhile (with
  // the spec the variant implies: used only if the graph agrees).
  const expected = setup.preload && expectedSpec(setup);
  const worker = WorkerPool.create({
    worker: TENSOR_WORKER, init: { budget: setup.budget.shared }, size: 1,
    ...(expected && setup.preload ? {
      first: {
        config: { spec: expected, resize: setup.resize, classes: setup.classes },
        items: setup.preload.sources, post: { threshold: 0, maxDetections: 0, ...(setup.preload.returnImage ? { returnImage: true } : {}) },
      },
    } : {}),
  });
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
    // The preloaded tensor serves the first run if that run asks for exactly those images. The
    // runner opens once it is made (that run would wait for it anyway), so the files were read
    // before the caller gets the Detector.
    if (pool.firstOutput) await Promise.allSettled([pool.firstOutput]);
    let preloaded = setup.preload && pool.firstOutput && sameSpec(spec, expected) ? { ...setup.preload, output: pool.firstOutput } : undefined;
    const takePreloaded = (sources: TaskSource[], post: PostOptions) => {
      const p = preloaded;
      preloaded = undefined;
      return p && p.returnImage === (post.returnImage === true) && sameSources(p.sources, sources) ? p.output : undefined;
    };
    return {
      backend: 'cpu',
      description: `${session.description} (single)`,
      spec,
      parallelism: 1,
      async run(sources, post) {
        const output = await (takePreloaded(sources, post) ?? pool.run(sources, post));
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

function sameSpec(a: ModelSpec, b: ModelSpec | undefined): boolean {
  return b !== undefined && a.inputSize === b.inputSize && a.normalization === b.normalization;
}

/** The same files in the same order (only file paths are preloaded). */
function sameSources(a: readonly TaskSource[], b: readonly TaskSource[]): boolean {
  return a.length === b.length && a.every((s, i) => {
    const t = b[i]!;
    return s.kind === 'path' && t.kind === 'path' && s.path === t.path;
  });
}
