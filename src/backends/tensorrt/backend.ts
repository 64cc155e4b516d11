/**
 * The `tensorrt` Backend: a native engine with a pool of context slots. run() takes a free slot,
 * writes the batch into its pinned input buffers (the memory the GPU copies from), awaits infer() off
 * the JS thread, and copies the small outputs out so the slot can serve the next batch at once.
 */
import { DeimError } from '../../errors.js';
import type { Backend, ModelIO, RawDetections, TensorBatch } from '../types.js';
import { probeTensorRt } from './availability.js';
import { buildEngine, removeEngine } from './build.js';
import { checkEngine } from './cache.js';
import type { NativeEngine, NativeTensorInfo } from './native.js';

export interface TensorRtBackendOptions {
  /** The ONNX model (used to build the engine when `engine` is not given). */
  modelPath: string;
  variant?: string;
  /** CUDA device index; default 0. */
  device?: number;
  /** A prebuilt engine file (`deimv2 build`); else one is built or reused from the cache. */
  engine?: string;
  precision?: 'fp16' | 'fp32';
  /** Largest batch the engine must take; default 1. */
  maxBatch?: number;
  /** Execution contexts in flight at once; default 2 (copies of one batch overlap compute of the next). */
  contexts?: number;
  /** Engine cache folder; default engineCacheDir(). */
  cacheDir?: string;
}

interface Roles { images: NativeTensorInfo; sizes: NativeTensorInfo; labels: NativeTensorInfo; boxes: NativeTensorInfo; scores: NativeTensorInfo }

/** Finds the DEIMv2 tensors by name, as the exports name them. */
function tensorRoles(tensors: readonly NativeTensorInfo[], file: string): Roles {
  const find = (name: string, input: boolean) => {
    const t = tensors.find((x) => x.name === name && x.input === input);
    if (!t) throw new DeimError('ERR_MODEL_NOT_DEIMV2', `engine ${file} has no ${input ? 'input' : 'output'} "${name}" (tensors: ${tensors.map((x) => x.name).join(', ')})`, { input: file });
    return t;
  };
  const roles = { images: find('images', true), sizes: find('orig_target_sizes', true), labels: find('labels', false), boxes: find('boxes', false), scores: find('scores', false) };
  if (roles.images.dtype !== 'float32' || roles.boxes.dtype !== 'float32' || roles.scores.dtype !== 'float32') {
    throw new DeimError('ERR_MODEL_NOT_DEIMV2', `engine ${file}: images, boxes and scores must be float32 at the engine boundary`, { input: file });
  }
  if (roles.images.shape.length !== 4 || roles.images.shape[2] !== roles.images.shape[3]) {
    throw new DeimError('ERR_MODEL_NOT_DEIMV2', `engine ${file}: images must be [N,3,S,S], got [${roles.images.shape.join(',')}]`, { input: file });
  }
  return roles;
}

export class TensorRtBackend implements Backend {
  readonly name = 'tensorrt' as const;
  readonly io: ModelIO;
  readonly maxBatch: number;
  private readonly free: number[] = [];
  private readonly waiting: ((slot: number) => void)[] = [];
  private closed = false;

  private constructor(
    private readonly engine: NativeEngine,
    private readonly roles: Roles,
    readonly description: string,
  ) {
    this.maxBatch = engine.profile.max;
    this.io = {
      inputSize: roles.images.shape[2],
      inputNames: engine.tensors.filter((t) => t.input).map((t) => t.name),
      outputNames: engine.tensors.filter((t) => !t.input).map((t) => t.name),
    };
    for (let i = 0; i < engine.slots; i++) this.free.push(i);
  }

  static async open(enginePath: string, device: number, contexts: number, description: string): Promise<TensorRtBackend> {
    const probe = probeTensorRt();
    if (!probe.ok) throw new DeimError('ERR_BACKEND_UNAVAILABLE', probe.reason);
    let engine: NativeEngine;
    try {
      engine = await probe.addon.openEngine({ engine: enginePath, device, contexts });
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new DeimError(code === 'ERR_ENGINE_INVALID' || code === 'ERR_ENGINE_NOT_FOUND' ? 'ERR_ENGINE_INVALID' : 'ERR_BACKEND_FAILED',
        `cannot open TensorRT engine ${enginePath} with TensorRT ${probe.version}: ${(e as Error).message}`, { input: enginePath, cause: e });
    }
    try {
      return new TensorRtBackend(engine, tensorRoles(engine.tensors, enginePath), `${description}, ${contexts} context(s), batch ${engine.profile.min}..${engine.profile.max}`);
    } catch (e) {
      await engine.close();
      throw e;
    }
  }

  private acquire(): Promise<number> {
    const slot = this.free.pop();
    return slot !== undefined ? Promise.resolve(slot) : new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(slot: number): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }

  async run(batch: TensorBatch): Promise<RawDetections> {
    if (this.closed) throw new DeimError('ERR_CLOSED', 'the TensorRT backend is closed');
    const size = this.io.inputSize!;
    const item = 3 * size * size;
    if (!Number.isInteger(batch.batch) || batch.batch < 1 || batch.images.length !== batch.batch * item || batch.sizes.length !== batch.batch * 2) {
      throw new DeimError('ERR_TENSOR_SIZE', `Expected ${batch.batch} x [3,${size},${size}] images and ${batch.batch} (width,height) pairs but received ${batch.images.length} floats and ${batch.sizes.length} sizes`);
    }
    const perImage = this.roles.scores.shape[1]!;
    const labels = new Int32Array(batch.batch * perImage);
    const boxes = new Float32Array(batch.batch * perImage * 4);
    const scores = new Float32Array(batch.batch * perImage);
    const chunks: Promise<void>[] = [];
    for (let start = 0; start < batch.batch; start += this.maxBatch) {
      const n = Math.min(this.maxBatch, batch.batch - start);
      chunks.push(this.runChunk(batch, start, n, item, perImage, labels, boxes, scores));
    }
    await Promise.all(chunks);
    return { batch: batch.batch, perImage, labels, boxes, scores };
  }

  private async runChunk(batch: TensorBatch, start: number, n: number, item: number, perImage: number,
    labels: Int32Array, boxes: Float32Array, scores: Float32Array): Promise<void> {
    const slot = await this.acquire();
    try {
      const buffers = this.engine.buffers(slot);
      new Float32Array(buffers.images!, 0, n * item).set(batch.images.subarray(start * item, (start + n) * item));
      const sizes = batch.sizes.subarray(start * 2, (start + n) * 2);
      if (this.roles.sizes.dtype === 'int64') {
        const view = new BigInt64Array(buffers.orig_target_sizes!, 0, n * 2);
        for (let i = 0; i < n * 2; i++) view[i] = BigInt(sizes[i]!);
      } else {
        new Int32Array(buffers.orig_target_sizes!, 0, n * 2).set(sizes);
      }
      await this.engine.infer(slot, n);
      if (this.roles.labels.dtype === 'int64') {
        // Class indices are 0..79: the low 32-bit word of each little-endian int64 holds the whole value.
        const words = new Int32Array(buffers.labels!, 0, n * perImage * 2);
        for (let i = 0, o = start * perImage; i < n * perImage; i++, o++) labels[o] = words[i * 2]!;
      } else {
        labels.set(new Int32Array(buffers.labels!, 0, n * perImage), start * perImage);
      }
      boxes.set(new Float32Array(buffers.boxes!, 0, n * perImage * 4), start * perImage * 4);
      scores.set(new Float32Array(buffers.scores!, 0, n * perImage), start * perImage);
    } catch (e) {
      if (e instanceof DeimError) throw e;
      throw new DeimError('ERR_BACKEND_FAILED', `TensorRT inference failed: ${(e as Error).message}`, { cause: e });
    } finally {
      this.release(slot);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.engine.close();
  }
}

/**
 * Opens the engine named by `options.engine`, or builds/reuses a validated one from the cache
 * (rebuilt when stale for this GPU/TensorRT, or corrupt).
 * @example const backend = await createTensorRtBackend({ modelPath: 'femto.onnx', maxBatch: 8 });
 */
export async function createTensorRtBackend(options: TensorRtBackendOptions): Promise<Backend> {
  const probe = probeTensorRt();
  if (!probe.ok) throw new DeimError('ERR_BACKEND_UNAVAILABLE', probe.reason);
  const device = options.device ?? 0;
  const contexts = options.contexts ?? 2;
  if (options.engine !== undefined) {
    // A user's engine may come without a sidecar (trtexec); when it has one, it must match the file.
    const check = await checkEngine(options.engine, undefined, false);
    if (check.status === 'missing') throw new DeimError('ERR_ENGINE_INVALID', `engine file not found: ${options.engine}`, { input: options.engine });
    if (check.status === 'corrupt' && !/has no sidecar/.test(check.reason)) throw new DeimError('ERR_ENGINE_INVALID', check.reason, { input: options.engine });
    return TensorRtBackend.open(options.engine, device, contexts, `TensorRT ${probe.version} engine ${options.engine} on device ${device}`);
  }
  const build = (force: boolean) => buildEngine({
    model: options.modelPath, device, maxBatch: options.maxBatch ?? 1, force,
    ...(options.precision ? { precision: options.precision } : {}),
    ...(options.cacheDir ? { out: options.cacheDir } : {}),
  });
  let built = await build(false);
  const describe = () => `TensorRT ${probe.version} ${built.sidecar.precision} on ${built.sidecar.gpuName} (device ${device})`;
  try {
    return await TensorRtBackend.open(built.engine, device, contexts, describe());
  } catch (e) {
    // Passed the size/sha checks yet TensorRT refuses it (e.g. a driver update): rebuild once.
    if (!(e instanceof DeimError) || e.code !== 'ERR_ENGINE_INVALID') throw e;
    await removeEngine(built.engine);
    built = await build(true);
    return TensorRtBackend.open(built.engine, device, contexts, describe());
  }
}
