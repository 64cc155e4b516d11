/**
 * The preprocessing half of a stage that makes a batch tensor: each image is resized and
 * normalised into its place in the task's tensor as soon as it is decoded (so its full-size pixels
 * can be freed at once), and the tensor is compacted over failed items at the end.
 */
import { imageToTensor, tensorSize } from '../image/tensor.js';
import type { InputTransform, RawImage, RgbImage } from '../image/types.js';
import type { DetectionFailure } from '../postprocess/types.js';
import { timeStage } from '../perf/stage-times.js';
import type { TaskOutput } from './messages.js';
import { failure, fileOf, type Prepared, type StageTask, type WorkerStage } from './worker-core.js';

interface TensorState {
  tensor: Float32Array;
  preprocessMs: number;
}

/** Writes image `item` of the task into the task's tensor; returns how it was placed. */
export function prepareTensor(task: StageTask, image: RawImage, item: number): InputTransform {
  const { spec, resize } = task.config;
  const plane = 3 * spec.inputSize * spec.inputSize;
  const state = (task.state ??= { tensor: new Float32Array(task.items.length * plane), preprocessMs: 0 }) as TensorState;
  const t0 = performance.now();
  const transform = timeStage('resize+tensor', () => imageToTensor(image, spec.inputSize, resize, spec.normalization, state.tensor, item * plane));
  state.preprocessMs += performance.now() - t0;
  return transform;
}

export interface GatheredTensor {
  /** [n,3,S,S] of the n items that decoded, in item order (a view of the task's tensor). */
  images: Float32Array;
  /** Width, height of the frame each of the n images' boxes are in. */
  sizes: Int32Array;
  /** Per item: its index in `images`, or its failure. */
  slots: Array<{ index: number; transform: InputTransform; file?: string; image?: RgbImage } | DetectionFailure>;
  n: number;
  preprocessMs: number;
}

export function gatherTensor(task: StageTask, items: ReadonlyArray<PromiseSettledResult<Prepared<InputTransform>>>): GatheredTensor {
  const { spec } = task.config;
  const plane = 3 * spec.inputSize * spec.inputSize;
  const state = task.state as TensorState | undefined;
  let n = 0;
  const slots = items.map((s, item): GatheredTensor['slots'][number] => {
    if (s.status === 'rejected') return failure(s.reason, fileOf(task.items[item]!));
    if (n !== item) state!.tensor.copyWithin(n * plane, item * plane, (item + 1) * plane);
    const { value, file, image } = s.value;
    return { index: n++, transform: value, ...(file !== undefined ? { file } : {}), ...(image ? { image } : {}) };
  });
  const sizes = new Int32Array(2 * n);
  for (const s of slots) {
    if ('error' in s) continue;
    sizes[2 * s.index] = s.transform.frameWidth;
    sizes[2 * s.index + 1] = s.transform.frameHeight;
  }
  return { images: state ? state.tensor.subarray(0, n * plane) : new Float32Array(0), sizes, slots, n, preprocessMs: state?.preprocessMs ?? 0 };
}

/** The stage of tensor-worker.ts (and of the CPU single runner's preloaded images, on its own thread). */
export const tensorStage: WorkerStage<InputTransform> = {
  // A run's first image would meet a cold resize kernel (its WebAssembly memory grows to a frame's
  // size: about 10 ms of a one-image run); one blank frame resized now, while the main thread loads
  // the model, pays that instead (decoding cold costs only a few ms more and is left as it is).
  start: async () => {
    try {
      imageToTensor({ data: new Uint8Array(640 * 480 * 3), width: 640, height: 480, channels: 3 }, 32, 'stretch', 'none', new Float32Array(tensorSize(32)));
    } catch {
      // Only a warm-up: the first real image says what is wrong, if anything.
    }
    return {};
  },
  keepsPixels: (post) => post.returnImage === true,
  prepare: prepareTensor,
  async finish(task, items) {
    const g = gatherTensor(task, items);
    const slots = g.slots.map((s) => ('error' in s ? s : { index: s.index, transform: s.transform, ...(s.file !== undefined ? { file: s.file } : {}) }));
    const decoded = task.post.returnImage ? g.slots.map((s) => ('error' in s ? undefined : s.image)) : undefined;
    const output: TaskOutput = { kind: 'tensor', images: g.images, slots, ...(decoded ? { decoded } : {}), timing: { inferMs: 0, preprocessMs: g.preprocessMs } };
    return { output, transfer: [g.images.buffer as ArrayBuffer] };
  },
  close: async () => {},
};
