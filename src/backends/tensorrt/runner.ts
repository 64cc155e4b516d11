/**
 * The TensorRT runner: pool workers only decode; this thread writes each batch straight into a
 * slot's pinned memory (RGB bytes for the GPU preprocessing kernel, or the float tensor made on the
 * CPU when GPU preprocessing is off) and postprocesses from the slot's pinned outputs.
 * The engine itself is found, built or validated above this (src/engine/).
 */
import { tensorrtBackendLabel } from './availability.js';
import os from 'node:os';
import type { RgbImage } from '../../image/types.js';
import { postprocessOptions, toDetections } from '../../postprocess/detections.js';
import type { DetectedImage } from '../../pool/messages.js';
import { WorkerPool } from '../../pool/worker-pool.js';
import type { Runner, RunnerSetup } from '../runner.js';
import { openEngineFile, type TensorRtBackend } from './backend.js';
import { runImagesOnTensorRt } from './run-images.js';

const DECODE_WORKER = new URL('../../pool/decode-worker.js', import.meta.url);

/** A runner over an opened engine; it owns the backend from here on (closes it, also on failure). */
export async function tensorRtRunner(backend: TensorRtBackend, setup: RunnerSetup): Promise<Runner> {
  let pool: WorkerPool | undefined;
  try {
    const spec = setup.specOf(backend.io);
    pool = await WorkerPool.create({ worker: DECODE_WORKER, init: { budget: setup.budget.shared }, size: Math.max(1, os.availableParallelism() - 1) });
    pool.configure({ spec, resize: setup.resize, classes: setup.classes });
    const decoder = pool;
    const options = { inputSize: spec.inputSize, resize: setup.resize, normalization: spec.normalization, gpuPreprocess: setup.gpuPreprocess !== false };
    return {
      backend: 'tensorrt',
      label: tensorrtBackendLabel(),
      description: backend.description,
      spec,
      parallelism: 1,
      async run(sources, post) {
        const output = await decoder.run(sources, post);
        if (output.kind !== 'decoded') throw new Error(`unexpected ${output.kind} output from a decode worker`);
        if (output.images.length === 0) return { results: output.slots as DetectedImage[], timing: output.timing };
        const postprocess = postprocessOptions(post, setup.classes);
        const timing = { preprocessMs: 0, inferMs: 0 };
        const found = await runImagesOnTensorRt(backend, output.images, options,
          (raw, i, transform) => toDetections(raw, i, transform, postprocess), timing);
        const results = output.slots.map((s): DetectedImage => {
          if ('error' in s) return s;
          const image: RgbImage = output.images[s.index]!;
          return {
            ...(s.file !== undefined ? { file: s.file } : {}),
            width: image.width,
            height: image.height,
            detections: found[s.index]!,
            ...(post.returnImage ? { image } : {}),
          };
        });
        return { results, timing };
      },
      close: async () => {
        await Promise.all([decoder.close(), backend.close()]);
      },
    };
  } catch (e) {
    await Promise.all([pool?.close(), backend.close()]);
    throw e;
  }
}

/** Opens the engine file `engine` (already found or built) as a runner. */
export async function openEngineRunner(engine: string, setup: RunnerSetup, description: string): Promise<Runner> {
  const backend = await openEngineFile(engine, {
    device: setup.device ?? 0,
    maxBatch: setup.batch,
    ...(setup.gpuPreprocess !== undefined ? { gpuPreprocess: setup.gpuPreprocess } : {}),
    ...(setup.cudaGraphs !== undefined ? { cudaGraphs: setup.cudaGraphs } : {}),
  }, description);
  return tensorRtRunner(backend, setup);
}
