/** A pool worker that decodes and preprocesses: batch tensors out, for a backend on the main thread. */
import sharp from 'sharp';
import { decodeBuffer } from '../image/decode.js';
import { imageToTensor, tensorSize } from '../image/tensor.js';
import type { InputTransform } from '../image/types.js';
import type { TaskOutput } from './messages.js';
import { gatherTensor, prepareTensor } from './tensor-stage.js';
import { runWorker } from './worker-core.js';

runWorker<InputTransform>({
  // A run's first image would meet a cold decoder and resize kernel (about 15 ms of a one-image
  // run): a tiny image decoded and resized now, while the main thread loads the model, pays that.
  start: async () => {
    void sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).jpeg().toBuffer()
      .then((jpeg) => decodeBuffer(jpeg, 'warm-up'))
      .then(() => imageToTensor({ data: new Uint8Array(640 * 480 * 3), width: 640, height: 480, channels: 3 }, 640, 'stretch', 'none', new Float32Array(tensorSize(640))))
      .catch(() => undefined);
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
