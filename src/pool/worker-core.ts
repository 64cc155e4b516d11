/**
 * What every pool worker does, whatever its stage: takes tasks from the main thread, reads and
 * decodes their images (sharp, on libuv threads) as soon as they arrive so decoding overlaps the
 * previous task's work, admits each decode against the shared pixel budget, hands each image to
 * the stage as soon as it is decoded (so its full-size pixels can go), and sends the stage's output
 * back. A stage is one small object: decode-worker (RGB out), tensor-worker (batch tensor out),
 * and the CPU backend's infer-worker (detections out).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ModelIO } from '../backends/types.js';
import { DeimError, errorMessage } from '../errors.js';
import { requireSharp } from '../cjs.js';
import { checkRawImage, decodeBuffer, readImageFile } from '../image/decode.js';
import { jpegFrame } from '../image/formats.js';
import type { RawImage, RgbImage } from '../image/types.js';
import type { DetectionFailure } from '../postprocess/types.js';
import { MemoryBudget } from './budget.js';
import type { FromWorker, PostOptions, SerializedError, TaskConfig, TaskOutput, TaskSource, ToWorker, WorkerInit } from './messages.js';

const sharp = requireSharp();

export interface StageTask {
  readonly id: number;
  readonly items: readonly TaskSource[];
  readonly post: PostOptions;
  readonly config: TaskConfig;
  /** The stage's own per-task state (e.g. the batch tensor it fills). */
  state?: unknown;
}

/** One decoded item as the stage prepared it; `image` only when the stage keeps pixels. */
export interface Prepared<P> {
  readonly value: P;
  readonly image?: RgbImage;
  readonly file?: string;
}

export interface WorkerStage<P> {
  /** Runs once before 'ready' (e.g. loads a model); what it returns is sent with 'ready'. */
  start(stage: Record<string, unknown> | undefined): Promise<{ io?: ModelIO; description?: string }>;
  /** Whether the decoded pixels go back to the main thread. */
  keepsPixels(post: PostOptions): boolean;
  /** Called for each image right after it is decoded, while its pixels are admitted. */
  prepare(task: StageTask, image: RawImage, item: number): P;
  /** Turns the task's prepared items (in item order) into its output. */
  finish(task: StageTask, items: ReadonlyArray<PromiseSettledResult<Prepared<P>>>): Promise<{ output: TaskOutput; transfer: ArrayBuffer[] }>;
  close(): Promise<void>;
}

export function serialize(e: unknown): SerializedError {
  if (e instanceof DeimError) return { code: e.code, message: e.message, ...(e.input !== undefined ? { input: e.input } : {}) };
  return { code: 'ERR_BACKEND_FAILED', message: errorMessage(e) };
}

export function failure(e: unknown, file?: string): DetectionFailure {
  const err = serialize(e);
  return { ...(file !== undefined ? { file } : {}), error: { code: err.code, message: err.message } };
}

export function fileOf(src: TaskSource): string | undefined {
  return src.kind === 'path' ? src.path : undefined;
}

/** The image as RGB (decoded files are RGB already; a raw gray or RGBA input is expanded). */
export function rgbOf(image: RawImage): RgbImage {
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

/** Decoded bytes of an encoded image, from its header (0 when sharp cannot read it: decode says why). */
export async function decodedBytes(bytes: Uint8Array): Promise<number> {
  // A JPEG's frame header is read here (a sharp metadata() call costs about 0.7 core-ms an image).
  const frame = bytes[0] === 0xff && bytes[1] === 0xd8 ? jpegFrame(bytes) : undefined;
  if (frame && frame.width > 0 && frame.height > 0) return frame.width * frame.height * (frame.components === 4 ? 7 : 3);
  try {
    const m = await sharp(bytes, { pages: 1 }).metadata();
    // CMYK is decoded as 4 bytes a pixel, then converted to 3 (src/image/decode.ts).
    return (m.width ?? 0) * (m.pageHeight ?? m.height ?? 0) * (m.space === 'cmyk' ? 7 : 3);
  } catch {
    return 0;
  }
}

/** Images one worker reads and decodes at once: enough to overlap reading, decoding and preprocessing. */
export const DECODES_AT_ONCE = 2;

/** Runs at most `n` of the functions it is given at once, in the order given. */
export function limiter(n: number): <T>(f: () => Promise<T>) => Promise<T> {
  let running = 0;
  const queue: Array<() => void> = [];
  return (f) => new Promise((resolve, reject) => {
    const start = () => {
      running++;
      f().then(resolve, reject).finally(() => {
        running--;
        queue.shift()?.();
      });
    };
    if (running < n) start();
    else queue.push(start);
  });
}

/** sharp as a pool worker uses it: one decode at a time (the pool has one worker per core), no cache. */
export function configureDecoder(): void {
  sharp.concurrency(1);
  sharp.cache(false);
}

/**
 * Reads and decodes item `item` of `task` (admitted against `budget`) and hands it to the stage:
 * what a worker does with each item of a task (the CPU single runner does it on the main thread
 * for the images it preloads).
 */
export async function prepareItem<P>(stage: WorkerStage<P>, budget: MemoryBudget, task: StageTask, item: number): Promise<Prepared<P>> {
  const src = task.items[item]!;
  const keep = stage.keepsPixels(task.post);
  const file = fileOf(src);
  if (src.kind === 'raw') {
    const image = checkRawImage(src.image, src.name);
    return { value: stage.prepare(task, image, item), ...(keep ? { image: rgbOf(image) } : {}) };
  }
  const bytes = src.kind === 'path' ? await readImageFile(src.path) : src.bytes;
  const release = await budget.acquire(await decodedBytes(bytes));
  try {
    const image = await decodeBuffer(bytes, src.kind === 'path' ? src.path : src.name);
    const value = stage.prepare(task, image, item);
    // Returned pixels belong to the caller from here on; the budget bounds decoding.
    return { value, ...(keep ? { image: image as RgbImage } : {}), ...(file !== undefined ? { file } : {}) };
  } finally {
    release();
  }
}

/** Starts the worker loop for `stage`; call once from a worker entry file. */
export function runWorker<P>(stage: WorkerStage<P>): void {
  const port = parentPort!;
  const init = workerData as WorkerInit;
  const budget = MemoryBudget.attach(init.budget);
  configureDecoder();

  let config: TaskConfig | undefined;
  const queue: Array<{ task: StageTask; prepared: Array<Promise<Prepared<P>>> }> = [];
  let draining = false;
  const send = (msg: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(msg, transfer);
  const limit = limiter(DECODES_AT_ONCE);

  const drain = async () => {
    if (draining) return;
    draining = true;
    try {
      while (queue.length > 0) {
        const { task, prepared } = queue.shift()!;
        try {
          const { output, transfer } = await stage.finish(task, await Promise.allSettled(prepared));
          send({ type: 'result', id: task.id, output }, transfer);
        } catch (e) {
          send({ type: 'task-error', id: task.id, error: serialize(e) });
        }
      }
    } finally {
      draining = false;
    }
  };

  port.on('message', (msg: ToWorker) => {
    switch (msg.type) {
      case 'configure':
        config = msg.config;
        return;
      case 'task': {
        const task: StageTask = { id: msg.id, items: msg.items, post: msg.post, config: config! };
        // Start decoding right away, a few images at a time (the pixel budget bounds them too);
        // a rejection is reported when the task's turn comes.
        const prepared = msg.items.map((_, item) => limit(() => prepareItem(stage, budget, task, item)));
        prepared.forEach((p) => p.catch(() => undefined));
        queue.push({ task, prepared });
        void drain();
        return;
      }
      case 'close':
        void stage.close().catch(() => undefined).finally(() => port.close());
        return;
    }
  });

  stage.start(init.stage).then(
    (ready) => send({ type: 'ready', ...ready }),
    (e) => send({ type: 'init-error', error: serialize(e) }),
  );
}
