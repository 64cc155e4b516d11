/** A pool worker that decodes and preprocesses: batch tensors out, for a backend on the main thread. */
import type { InputTransform } from '../image/types.js';
import type { TaskOutput } from './messages.js';
import { gatherTensor, prepareTensor } from './tensor-stage.js';
import { runWorker } from './worker-core.js';

runWorker<InputTransform>({
  start: async () => ({}),
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
