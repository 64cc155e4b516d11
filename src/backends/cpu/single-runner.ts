/**
 * The CPU 'single' runner: one onnxruntime session using every core, on the main thread's side,
 * for the lowest latency of one call at a time; a worker decodes and preprocesses. Preloaded
 * images that are the whole run (setup.preload.alone) are decoded and preprocessed on this thread
 * instead on a machine with one core, while the model loads: such a run starts no worker (a worker
 * thread costs more CPU than that image's decode, and has no core of its own to overlap the load
 * on), and one starts only if more runs come.
 */
import { availableParallelism } from 'node:os';
import { postprocessOptions, toDetections } from '../../postprocess/detections.js';
import type { ModelSpec } from '../../models/model-spec.js';
import { MemoryBudget } from '../../pool/budget.js';
import type { DetectedImage, PostOptions, TaskConfig, TaskOutput, TaskSource } from '../../pool/messages.js';
import { WorkerPool } from '../../pool/worker-pool.js';
import type { Runner, RunnerSetup } from '../runner.js';
import { DeimError } from '../../errors.js';

const TENSOR_WORKER = new URL('../../pool/tensor-worker.js', import.meta.url);

/** The spec the model's name and the options give, before its graph is read (undefined when only the graph can say). */
export function expectedSpec(setup: RunnerSetup): ModelSpec | undefined {
  try {
    return setup.specOf({ inputSize: undefined, inputNames: [], outputNames: [] });
  } catch {
    return undefined;
  }
}

/**
 * The preloaded images read, decoded and preprocessed on this thread: the reads start now, so the
 * decodes (on libuv threads) go on while this thread loads the model.
 */
async function preprocessHere(setup: RunnerSetup, config: TaskConfig, sources: TaskSource[], post: PostOptions): Promise<TaskOutput> {
  const { tensorStage } = await import('../../pool/tensor-stage.js');
  const { configureDecoder, limiter, prepareItem, DECODES_AT_ONCE } = await import('../../pool/worker-core.js');
  configureDecoder();
  const budget = MemoryBudget.attach(setup.budget.shared);
  const task = { id: 0, items: sources, post, config };
  const limit = limiter(DECODES_AT_ONCE);
  const prepared = sources.map((_, item) => limit(() => prepareItem(tensorStage, budget, task, item)));
  return (await tensorStage.finish(task, await Promise.allSettled(prepared))).output;
}

export async function openCpuSingleRunner(setup: RunnerSetup): Promise<Runner> {
  // The worker starts first (its thread loads the decoder) while this one loads onnxruntime and the
  // model; the images of setup.preload go with it, so they are decoded and resized meanwhile (with
  // the spec the variant implies: used only if the graph agrees). When they are the whole run,
  // this thread does them (see above) and the worker waits for a run that needs it.
  const expected = setup.preload && expectedSpec(setup);
  // Here only on one core: with a second core free, the worker's decode overlaps the model's load and
  // the run ends sooner (measured on a quiet 2-core machine, farm-bench, 10 pairs: wall 1.08x with the
  // decode here, though 13% less CPU), so the CPU saving is taken only where nothing can overlap.
  const here = expected && setup.preload?.alone === true && availableParallelism() < 2;
  const first = expected && setup.preload ? {
    config: { spec: expected, resize: setup.resize, classes: setup.classes },
    items: setup.preload.sources, post: { threshold: 0, maxDetections: 0, ...(setup.preload.returnImage ? { returnImage: true } : {}) },
  } : undefined;
  const startPool = (withFirst: boolean) => WorkerPool.create({
    worker: TENSOR_WORKER, init: { budget: setup.budget.shared }, size: 1, ...(withFirst && first ? { first } : {}),
  });
  const preprocessed = here && first ? preprocessHere(setup, first.config, first.items, first.post) : undefined;
  preprocessed?.catch(() => undefined); // read below
  const [p, s] = await Promise.allSettled([
    preprocessed ? Promise.resolve(undefined) : startPool(true),
    import('./session.js').then(({ CpuSession }) => CpuSession.create(setup.model.path, { threads: setup.threads })),
  ]);
  if (s.status === 'rejected' || p.status === 'rejected') {
    await Promise.all([s.status === 'fulfilled' ? s.value.close() : undefined, p.status === 'fulfilled' ? p.value?.close() : undefined, preprocessed?.catch(() => undefined)]);
    throw s.status === 'rejected' ? s.reason : (p as PromiseRejectedResult).reason;
  }
  const session = s.value;
  // The worker: started with the runner, or (after preprocessing here) by the first run that needs it.
  let started: Promise<WorkerPool> | undefined = p.value ? Promise.resolve(p.value) : undefined;
  let closed = false;
  const poolNow = (spec: ModelSpec): Promise<WorkerPool> => {
    if (closed) return Promise.reject(new DeimError('ERR_CLOSED', 'the detector is closed'));
    started ??= startPool(false).then((pool) => {
      pool.configure({ spec, resize: setup.resize, classes: setup.classes });
      return pool;
    });
    return started;
  };
  const closePool = async () => {
    closed = true;
    const pool = await started?.catch(() => undefined);
    await pool?.close();
  };
  try {
    const spec = setup.specOf(session.io);
    p.value?.configure({ spec, resize: setup.resize, classes: setup.classes });
    // The preloaded tensor serves the first run if that run asks for exactly those images. The
    // runner opens once it is made (that run would wait for it anyway), so the files were read
    // before the caller gets the Detector.
    const firstOutput = preprocessed ?? p.value?.firstOutput;
    if (firstOutput) await Promise.allSettled([firstOutput]);
    let preloaded = setup.preload && firstOutput && sameSpec(spec, expected) ? { ...setup.preload, output: firstOutput } : undefined;
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
        const output = await (takePreloaded(sources, post) ?? poolNow(spec).then((pool) => pool.run(sources, post)));
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
        await Promise.all([closePool(), session.close()]);
      },
    };
  } catch (e) {
    await Promise.all([closePool(), session.close()]);
    throw e;
  }
}

export function sameSpec(a: ModelSpec, b: ModelSpec | undefined): boolean {
  return b !== undefined && a.inputSize === b.inputSize && a.normalization === b.normalization;
}

/** The same files in the same order (only file paths are preloaded). */
export function sameSources(a: readonly TaskSource[], b: readonly TaskSource[]): boolean {
  return a.length === b.length && a.every((s, i) => {
    const t = b[i]!;
    return s.kind === 'path' && t.kind === 'path' && s.path === t.path;
  });
}
