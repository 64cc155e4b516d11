/**
 * A pool worker: decodes and resizes images off the main thread and, in infer mode, runs its own
 * single-thread onnxruntime session on them. Decoding (sharp, on libuv threads) of the next task
 * starts as soon as it arrives, so it overlaps the inference of the current one.
 */
import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { CpuSession } from '../backends/cpu/session.js';
import { DeimError, errorMessage } from '../errors.js';
import { checkRawImage, decodeBuffer, readImageFile } from '../image/decode.js';
import { imageToTensor } from '../image/tensor.js';
import type { InputTransform, RawImage, RgbImage } from '../image/types.js';
import { postprocessOptions, toDetections } from '../postprocess/detections.js';
import type { DetectionFailure, DetectionResult } from '../postprocess/types.js';
import type { FromWorker, SerializedError, TaskConfig, TaskOutput, TaskSource, ToWorker, WorkerInit } from './messages.js';

const port = parentPort!;
const init = workerData as WorkerInit;
// One decode at a time per worker: the pool already has one worker per core.
sharp.concurrency(1);
sharp.cache(false);

let session: CpuSession | undefined;
let config: TaskConfig | undefined;
/** Reused batch tensor, grown when a larger batch arrives. */
let tensor = new Float32Array(0);
let sizes = new Int32Array(0);

interface Pending {
  id: number;
  items: TaskSource[];
  post: Extract<ToWorker, { type: 'task' }>['post'];
  decoded: Array<Promise<{ image: RawImage; file?: string }>>;
}
const queue: Pending[] = [];
let draining = false;

function send(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  port.postMessage(msg, transfer);
}

function serialize(e: unknown): SerializedError {
  if (e instanceof DeimError) return { code: e.code, message: e.message, ...(e.input !== undefined ? { input: e.input } : {}) };
  return { code: 'ERR_BACKEND_FAILED', message: errorMessage(e) };
}

function decode(src: TaskSource): Promise<{ image: RawImage; file?: string }> {
  switch (src.kind) {
    case 'path':
      return readImageFile(src.path).then((bytes) => decodeBuffer(bytes, src.path)).then((image) => ({ image, file: src.path }));
    case 'bytes':
      return decodeBuffer(src.bytes, src.name).then((image) => ({ image }));
    case 'raw':
      return Promise.resolve().then(() => ({ image: checkRawImage(src.image, src.name) }));
  }
}

function failure(e: unknown, file?: string): DetectionFailure {
  const err = serialize(e);
  return { ...(file !== undefined ? { file } : {}), error: { code: err.code, message: err.message } };
}

async function runTask(task: Pending): Promise<{ output: TaskOutput; transfer: ArrayBuffer[] }> {
  const settled = await Promise.allSettled(task.decoded);
  const fileOf = (i: number) => (task.items[i]!.kind === 'path' ? (task.items[i] as { path: string }).path : undefined);
  if (init.mode === 'decode') return decodedOutput(settled, fileOf);
  const cfg = config!;
  const side = cfg.spec.inputSize;
  const plane = 3 * side * side;
  const good: Array<{ item: number; image: RawImage; file?: string }> = [];
  settled.forEach((s, item) => {
    if (s.status === 'fulfilled') good.push({ item, image: s.value.image, ...(s.value.file !== undefined ? { file: s.value.file } : {}) });
  });

  const n = good.length;
  const wantTensor = init.mode === 'preprocess';
  // Preprocess mode hands its tensor to the main thread, so it gets a fresh one each task.
  const images = wantTensor ? new Float32Array(n * plane) : tensor.length >= n * plane ? tensor : (tensor = new Float32Array(n * plane));
  if (sizes.length < 2 * n) sizes = new Int32Array(2 * n);
  const transforms: InputTransform[] = [];
  const t0 = performance.now();
  good.forEach((g, i) => {
    const tr = imageToTensor(g.image, side, cfg.resize, cfg.spec.normalization, images, i * plane);
    transforms.push(tr);
    sizes[2 * i] = tr.frameWidth;
    sizes[2 * i + 1] = tr.frameHeight;
  });
  const preprocessMs = performance.now() - t0;

  if (wantTensor) {
    const slots: Extract<TaskOutput, { kind: 'tensor' }>['slots'] = settled.map((s, item) =>
      s.status === 'rejected' ? failure(s.reason, fileOf(item)) : { index: -1, transform: undefined as unknown as InputTransform },
    );
    good.forEach((g, i) => (slots[g.item] = { index: i, transform: transforms[i]!, ...(g.file !== undefined ? { file: g.file } : {}) }));
    const decoded = task.post.returnImage ? settled.map((s) => (s.status === 'fulfilled' ? rgbOf(s.value.image) : undefined)) : undefined;
    return { output: { kind: 'tensor', images, slots, ...(decoded ? { decoded } : {}), timing: { inferMs: 0, preprocessMs } }, transfer: [images.buffer as ArrayBuffer] };
  }

  const results: Array<DetectionResult | DetectionFailure> = settled.map((s, item) => (s.status === 'rejected' ? failure(s.reason, fileOf(item)) : (undefined as never)));
  let inferMs = 0;
  if (n > 0) {
    const t1 = performance.now();
    const raw = await session!.run({ images: n * plane === images.length ? images : images.subarray(0, n * plane), sizes: sizes.subarray(0, 2 * n), batch: n });
    inferMs = performance.now() - t1;
    const post = postprocessOptions(task.post, cfg.classes);
    good.forEach((g, i) => {
      results[g.item] = {
        ...(g.file !== undefined ? { file: g.file } : {}),
        width: g.image.width,
        height: g.image.height,
        detections: toDetections(raw, i, transforms[i]!, post),
        ...(task.post.returnImage ? { image: rgbOf(g.image) } : {}),
      };
    });
  }
  return { output: { kind: 'detections', results, timing: { inferMs, preprocessMs } }, transfer: [] };
}

/** Decode mode: the RGB images themselves (the main thread writes them into TensorRT's pinned memory). */
function decodedOutput(settled: PromiseSettledResult<{ image: RawImage; file?: string }>[], fileOf: (i: number) => string | undefined): { output: TaskOutput; transfer: ArrayBuffer[] } {
  const images: RgbImage[] = [];
  const slots = settled.map((s, item): { index: number; file?: string } | DetectionFailure => {
    if (s.status === 'rejected') return failure(s.reason, fileOf(item));
    images.push(rgbOf(s.value.image));
    return { index: images.length - 1, ...(s.value.file !== undefined ? { file: s.value.file } : {}) };
  });
  // Pixels are copied by postMessage (sharp's output buffers are not always transferable).
  return { output: { kind: 'decoded', images, slots, timing: { inferMs: 0, preprocessMs: 0 } }, transfer: [] };
}

/**
 * The decoded image as RGB for the caller to draw on (decoded files are RGB already; a raw gray
 * or RGBA input is expanded).
 */
function rgbOf(image: RawImage): RgbImage {
  if (image.channels === 3) return image as RgbImage;
  const n = image.width * image.height;
  const out = new Uint8Array(n * 3);
  const c = image.channels;
  for (let i = 0; i < n; i++) {
    const g = image.data[i * c]!;
    out[i * 3] = g;
    out[i * 3 + 1] = c === 1 ? g : image.data[i * c + 1]!;
    out[i * 3 + 2] = c === 1 ? g : image.data[i * c + 2]!;
  }
  return { data: out, width: image.width, height: image.height, channels: 3 };
}

async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  try {
    while (queue.length > 0) {
      const task = queue.shift()!;
      try {
        const { output, transfer } = await runTask(task);
        send({ type: 'result', id: task.id, output }, transfer);
      } catch (e) {
        send({ type: 'task-error', id: task.id, error: serialize(e) });
      }
    }
  } finally {
    draining = false;
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'configure':
      config = msg.config;
      return;
    case 'task': {
      // Start decoding right away; a rejection is handled when the task's turn comes.
      const decoded = msg.items.map((src) => decode(src));
      decoded.forEach((p) => p.catch(() => undefined));
      queue.push({ id: msg.id, items: msg.items, post: msg.post, decoded });
      void drain();
      return;
    }
    case 'close':
      void (session?.close() ?? Promise.resolve()).finally(() => port.close());
      return;
  }
});

(async () => {
  try {
    if (init.mode === 'infer') {
      session = await CpuSession.create(init.modelPath, { threads: init.threads });
      send({ type: 'ready', io: session.io, description: session.description });
    } else {
      send({ type: 'ready' });
    }
  } catch (e) {
    send({ type: 'init-error', error: serialize(e) });
  }
})();
