/** A pool worker that decodes and preprocesses: batch tensors out, for a backend on the main thread. */
import { imageToTensor, tensorSize } from '../image/tensor.js';
import type { InputTransform } from '../image/types.js';
import type { TaskOutput } from './messages.js';
import { gatherTensor, prepareTensor } from './tensor-stage.js';
import { runWorker } from './worker-core.js';

runWorker<InputTransform>({
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
});
