/**
 * Decoded images -> TensorRT without an intermediate tensor: each chunk of up to maxBatch images
 * takes a slot and is written straight into that slot's pinned memory, either
 *  - as RGB bytes into its frame staging, resized and normalised on the GPU by the preprocessing
 *    kernel (the default when the addon has the kernel: 1 byte per value crosses PCIe), or
 *  - as the float tensor, by imageToTensor on this thread into the pinned input (otherwise, or when
 *    a chunk does not fit the staging).
 * The outputs are read as views of the slot's pinned outputs by `consume`, before the slot is
 * released, so nothing is copied on the way out either.
 *
 * @example
 * const results = await runImagesOnTensorRt(backend, images, { inputSize: 320, resize: 'stretch', normalization: 'none' },
 *   (raw, i, transform) => toDetections(raw, i, transform, post));
 */
import { imageToTensor } from '../../image/tensor.js';
import type { InputTransform, RawImage, ResizeMode } from '../../image/types.js';
import type { Normalization } from '../../models/variants.js';
import type { RawDetections } from '../types.js';
import type { TensorRtBackend, TensorRtLease } from './backend.js';
import { frameBytesOf, planFrames, writeFrames } from './frames.js';

export interface ImageRunOptions {
  readonly inputSize: number;
  readonly resize: ResizeMode;
  readonly normalization: Normalization;
  /** Use the GPU kernel when the backend has frame staging; default true. */
  readonly gpuPreprocess?: boolean;
}

export interface ImageRunTiming {
  /** Milliseconds spent on this thread preparing inputs (tensor or frame copies and tables). */
  preprocessMs: number;
  /** Milliseconds from the start of the native runs to their end (GPU preprocessing included). */
  inferMs: number;
}

/**
 * Runs `images` and returns `consume(raw, i, transform)` for each image i, in order. `raw` is only
 * valid during the call (it views the slot's pinned outputs): consume must copy what it keeps.
 */
export async function runImagesOnTensorRt<T>(
  backend: TensorRtBackend,
  images: readonly RawImage[],
  options: ImageRunOptions,
  consume: (raw: RawDetections, index: number, transform: InputTransform) => T,
  timing: ImageRunTiming = { preprocessMs: 0, inferMs: 0 },
): Promise<T[]> {
  const out = new Array<T>(images.length);
  const chunks: Promise<void>[] = [];
  for (let start = 0; start < images.length; start += backend.maxBatch) {
    const chunk = images.slice(start, start + backend.maxBatch);
    chunks.push((async () => {
      const lease = await backend.acquire();
      try {
        const t0 = performance.now();
        const { transforms, run } = fillLease(lease, chunk, options);
        const t1 = performance.now();
        const raw = await run();
        timing.preprocessMs += t1 - t0;
        timing.inferMs += performance.now() - t1;
        chunk.forEach((_, i) => (out[start + i] = consume(raw, i, transforms[i]!)));
      } finally {
        lease.release();
      }
    })());
  }
  await Promise.all(chunks);
  return out;
}

/** Writes one chunk into the lent slot, the GPU way when it can; returns how to run it. */
function fillLease(lease: TensorRtLease, chunk: readonly RawImage[], options: ImageRunOptions): { transforms: readonly InputTransform[]; run: () => Promise<RawDetections> } {
  const staging = lease.frames;
  const fits = staging !== undefined && options.gpuPreprocess !== false && chunk.every((image) => image.channels === 3)
    && chunk.reduce((bytes, image) => bytes + frameBytesOf(image), 0) <= staging.length;
  if (fits) {
    const planned = planFrames(chunk, options.inputSize, options.resize, options.normalization);
    writeFrames(chunk, staging!, planned);
    planned.transforms.forEach((t, i) => lease.setSize(i, t.frameWidth, t.frameHeight));
    return { transforms: planned.transforms, run: () => lease.runFrames(chunk.length, planned) };
  }
  const plane = 3 * options.inputSize * options.inputSize;
  const transforms = chunk.map((image, i) => {
    const t = imageToTensor(image, options.inputSize, options.resize, options.normalization, lease.input, i * plane);
    lease.setSize(i, t.frameWidth, t.frameHeight);
    return t;
  });
  return { transforms, run: () => lease.run(chunk.length) };
}
