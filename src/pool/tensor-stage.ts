/**
 * The preprocessing half of a stage that makes a batch tensor: each image is resized and
 * normalised into its place in the task's tensor as soon as it is decoded (so its full-size pixels
 * can be freed at once), and the tensor is compacted over failed items at the end.
 */
import { imageToTensor } from '../image/tensor.js';
import type { InputTransform, RawImage, RgbImage } from '../image/types.js';
import type { DetectionFailure } from '../postprocess/types.js';
import { timeStage } from '../perf/stage-times.js';
import { failure, fileOf, type Prepared, type StageTask } from './worker-core.js';

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
