/** A pool worker that only decodes: RGB images out (TensorRT writes them into pinned memory itself). */
import type { RgbImage } from '../image/types.js';
import type { TaskOutput } from './messages.js';
import { failure, fileOf, runWorker } from './worker-core.js';

runWorker<undefined>({
  start: async () => ({}),
  keepsPixels: () => true,
  prepare: () => undefined,
  async finish(task, items) {
    const images: RgbImage[] = [];
    const slots = items.map((s, item): { index: number; file?: string } | ReturnType<typeof failure> => {
      if (s.status === 'rejected') return failure(s.reason, fileOf(task.items[item]!));
      images.push(s.value.image!);
      return { index: images.length - 1, ...(s.value.file !== undefined ? { file: s.value.file } : {}) };
    });
    // Pixels are copied by postMessage (sharp's output buffers are not always transferable).
    const output: TaskOutput = { kind: 'decoded', images, slots, timing: { inferMs: 0, preprocessMs: 0 } };
    return { output, transfer: [] };
  },
  close: async () => {},
});
