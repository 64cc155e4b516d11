/**
 * The CPU pool's worker: decodes and preprocesses its own images (worker-core) and runs them on
 * its own single-thread onnxruntime session, so every core decodes, resizes and infers.
 */
import type { InputTransform } from '../../image/types.js';
import { toDetections, postprocessOptions } from '../../postprocess/detections.js';
import type { DetectedImage } from '../../pool/messages.js';
import { gatherTensor, prepareTensor } from '../../pool/tensor-stage.js';
import { runWorker } from '../../pool/worker-core.js';
import { CpuSession } from './session.js';

let session: CpuSession | undefined;

runWorker<InputTransform>({
  async start(stage) {
    session = await CpuSession.create(String(stage!.modelPath), { threads: Number(stage!.threads ?? 1) });
    return { io: session.io, description: session.description };
  },
  keepsPixels: (post) => post.returnImage === true,
  prepare: prepareTensor,
  async finish(task, items) {
    const g = gatherTensor(task, items);
    let inferMs = 0;
    const results: DetectedImage[] = g.slots.map((s) => ('error' in s ? s : (undefined as never)));
    if (g.n > 0) {
      const t0 = performance.now();
      const raw = await session!.run({ images: g.images, sizes: g.sizes, batch: g.n });
      inferMs = performance.now() - t0;
      const post = postprocessOptions(task.post, task.config.classes);
      g.slots.forEach((s, item) => {
        if ('error' in s) return;
        results[item] = {
          ...(s.file !== undefined ? { file: s.file } : {}),
          width: s.transform.imageWidth,
          height: s.transform.imageHeight,
          detections: toDetections(raw, s.index, s.transform, post),
          ...(s.image ? { image: s.image } : {}),
        };
      });
    }
    return { output: { kind: 'detections', results, timing: { inferMs, preprocessMs: g.preprocessMs } }, transfer: [] };
  },
  close: async () => {
    await session?.close();
  },
});
