/**
 * The `tensorrt` Backend: a native engine with a pool of context slots, each with pinned host memory
 * that JS reads and writes in place (zero-copy).
 *  - acquire() lends a free slot as a TensorRtLease: the caller writes the input tensor straight
 *    into `lease.input` (imageToTensor into pinned memory), or RGB frames into `lease.frames` for the
 *    GPU preprocessing kernel, runs it, reads the outputs as views of the slot's pinned outputs, and
 *    release()s the slot once done with them. The TensorRT runner (runner.ts) works this way.
 *  - run(TensorBatch), the Backend seam (validation, tests), copies in and out through a lease.
 * A slot in flight cannot be reused or freed: the lease is not handed out twice, and the addon
 * refuses a second infer on a busy slot and frees GPU memory only after the infers in flight.
 */
import { DeimError } from '../../errors.js';
import type { Backend, ModelIO, RawDetections, TensorBatch } from '../types.js';
import { probeTensorRt } from './availability.js';
import type { PlannedFrames } from './frames.js';
import type { NativeEngine, NativeTensorInfo } from './native.js';

/** Default frame staging per slot: a full batch of 1920x1080 RGB frames, at most 256 MiB. */
export function defaultFrameBytes(maxBatch: number): number {
  return Math.min(256 * 1024 * 1024, Math.max(1, maxBatch) * 1920 * 1080 * 3);
}

/** How an engine is opened: the execution choices, not which engine. */
export interface EngineOpenOptions {
  /** CUDA device index; default 0. */
  device?: number;
  /** Execution contexts in flight at once; default 2 (copies of one batch overlap compute of the next). */
  contexts?: number;
  /** Largest batch one run takes (sizes the frame staging); default 1. */
  maxBatch?: number;
  /**
   * Resize and normalise on the GPU (default true, when the addon has the kernel): frames go up as
   * 1 byte per value. false = no frame staging: the tensor is made on the CPU.
   */
  gpuPreprocess?: boolean;
  /** Per slot, bytes of pinned uint8 frame staging; default room for a batch of 1080p frames. */
  frameBytes?: number;
  /** Replay inference from CUDA graphs (captured per slot when a batch size repeats); default true. */
  cudaGraphs?: boolean;
}

/** Opens `enginePath` as these options say; `description` starts the backend's description. */
export function openEngineFile(enginePath: string, options: EngineOpenOptions, description: string): Promise<TensorRtBackend> {
  const probe = probeTensorRt();
  if (!probe.ok) return Promise.reject(new DeimError('ERR_BACKEND_UNAVAILABLE', probe.reason));
  const frameBytes = options.gpuPreprocess === false ? 0 : (options.frameBytes ?? (probe.addon.buildInfo().cudaKernels ? defaultFrameBytes(options.maxBatch ?? 1) : 0));
  return TensorRtBackend.open(enginePath, options.device ?? 0, options.contexts ?? 2, description,
    { frameBytes, ...(options.cudaGraphs !== undefined ? { cudaGraphs: options.cudaGraphs } : {}) });
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

/**
 * One slot lent to a caller. Everything here views the slot's pinned memory, so it is valid only
 * until release(); outputs of run()/runFrames() are overwritten by the slot's next run.
 */
export interface TensorRtLease {
  readonly slot: number;
  /** Images one run takes: the engine profile's max batch. */
  readonly capacity: number;
  /** [capacity,3,S,S] float32: the pinned input the GPU copies from. */
  readonly input: Float32Array;
  /** Pinned uint8 staging for runFrames(), or undefined when GPU preprocessing is off. */
  readonly frames: Uint8Array | undefined;
  /** orig_target_sizes of image i: the (width, height) of the frame the boxes are in. */
  setSize(i: number, width: number, height: number): void;
  /** Runs images 0..n-1 of `input`. */
  run(n: number): Promise<RawDetections>;
  /** Runs the n frames in `frames` laid out as `planned` says (the kernel fills the image input on the GPU). */
  runFrames(n: number, planned: PlannedFrames): Promise<RawDetections>;
  /**
   * Copies the image input the GPU holds for images 0..n-1 back into `input` and returns that view:
   * how the GPU preprocessing is checked against imageToTensor.
   */
  readInput(n: number): Promise<Float32Array>;
  /** Hands the slot back; call once, after the last read of the outputs. */
  release(): void;
}

/** Typed views of one slot's pinned buffers, made once per slot (V8 allows one ArrayBuffer per block). */
interface SlotViews {
  input: Float32Array;
  sizes: Int32Array | BigInt64Array;
  boxes: Float32Array;
  scores: Float32Array;
  /** int32 labels: a view; int64 labels: the low words are converted into `labels32` once per run. */
  labels32: Int32Array;
  labels64Words: Int32Array | undefined;
  frames: Uint8Array | undefined;
}

export class TensorRtBackend implements Backend {
  readonly name = 'tensorrt' as const;
  readonly io: ModelIO;
  readonly maxBatch: number;
  /** Detections per image (300 for the exports). */
  readonly perImage: number;
  private readonly free: number[] = [];
  private readonly waiting: ((slot: number) => void)[] = [];
  private readonly views: SlotViews[] = [];
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly engine: NativeEngine,
    roles: Roles,
    readonly description: string,
  ) {
    this.maxBatch = engine.profile.max;
    this.perImage = roles.scores.shape[1]!;
    this.io = {
      inputSize: roles.images.shape[2],
      inputNames: engine.tensors.filter((t) => t.input).map((t) => t.name),
      outputNames: engine.tensors.filter((t) => !t.input).map((t) => t.name),
    };
    const items = this.maxBatch * this.perImage;
    for (let i = 0; i < engine.slots; i++) {
      const b = engine.buffers(i);
      let frames: Uint8Array | undefined;
      try {
        frames = new Uint8Array(engine.frames(i));
      } catch {
        frames = undefined; // opened without frame staging
      }
      const labels64 = roles.labels.dtype === 'int64';
      this.views.push({
        input: new Float32Array(b.images!),
        sizes: roles.sizes.dtype === 'int64' ? new BigInt64Array(b.orig_target_sizes!) : new Int32Array(b.orig_target_sizes!),
        boxes: new Float32Array(b.boxes!),
        scores: new Float32Array(b.scores!),
        labels32: labels64 ? new Int32Array(items) : new Int32Array(b.labels!),
        labels64Words: labels64 ? new Int32Array(b.labels!) : undefined,
        frames,
      });
      this.free.push(i);
    }
  }

  static async open(enginePath: string, device: number, contexts: number, description: string,
    extra: { frameBytes?: number; cudaGraphs?: boolean } = {}): Promise<TensorRtBackend> {
    const probe = probeTensorRt();
    if (!probe.ok) throw new DeimError('ERR_BACKEND_UNAVAILABLE', probe.reason);
    const gpuPre = extra.frameBytes ? ', GPU preprocessing' : ', CPU preprocessing';
    const graphs = extra.cudaGraphs === false ? ', no CUDA graphs' : '';
    let engine: NativeEngine;
    try {
      engine = await probe.addon.openEngine({ engine: enginePath, device, contexts, ...extra });
    } catch (e) {
      const code = (e as { code?: string }).code;
      throw new DeimError(code === 'ERR_ENGINE_INVALID' || code === 'ERR_ENGINE_NOT_FOUND' ? 'ERR_ENGINE_INVALID' : 'ERR_BACKEND_FAILED',
        `cannot open TensorRT engine ${enginePath} with TensorRT ${probe.version}: ${(e as Error).message}`, { input: enginePath, cause: e });
    }
    try {
      return new TensorRtBackend(engine, tensorRoles(engine.tensors, enginePath), `${description}, ${contexts} context(s), batch ${engine.profile.min}..${engine.profile.max}${gpuPre}${graphs}`);
    } catch (e) {
      await engine.close();
      throw e;
    }
  }

  /** Whether slots have frame staging for runFrames() (GPU preprocessing). */
  get gpuPreprocessing(): boolean {
    return this.views[0]?.frames !== undefined;
  }

  /** Per slot CUDA graph state, from the addon. */
  get cudaGraphs(): NativeEngine['cudaGraphs'] {
    return this.engine.cudaGraphs;
  }

  /** Waits for a free slot and lends it; the caller must release() it. */
  async acquire(): Promise<TensorRtLease> {
    if (this.closing) throw new DeimError('ERR_CLOSED', 'the TensorRT backend is closed');
    const free = this.free.pop();
    const slot = free !== undefined ? free : await new Promise<number>((resolve) => this.waiting.push(resolve));
    return this.lease(slot);
  }

  private lease(slot: number): TensorRtLease {
    const views = this.views[slot]!;
    const capacity = this.maxBatch;
    let released = false;
    const check = (n: number) => {
      if (released) throw new DeimError('ERR_CLOSED', `slot ${slot} was released: acquire() another`);
      if (!Number.isInteger(n) || n < 1 || n > capacity) throw new DeimError('ERR_TENSOR_SIZE', `Expected 1..${capacity} images for one TensorRT run but received ${String(n)}`);
    };
    const infer = async (n: number, start: () => Promise<void>): Promise<RawDetections> => {
      check(n);
      try {
        await start();
      } catch (e) {
        if (e instanceof DeimError) throw e;
        const code = (e as { code?: string }).code;
        throw new DeimError(code === 'ERR_CLOSED' ? 'ERR_CLOSED' : 'ERR_BACKEND_FAILED', `TensorRT inference failed: ${(e as Error).message}`, { cause: e });
      }
      return this.outputs(views, n);
    };
    return {
      slot,
      capacity,
      input: views.input,
      frames: views.frames,
      setSize: (i, width, height) => {
        if (views.sizes instanceof BigInt64Array) {
          views.sizes[2 * i] = BigInt(width);
          views.sizes[2 * i + 1] = BigInt(height);
        } else {
          views.sizes[2 * i] = width;
          views.sizes[2 * i + 1] = height;
        }
      },
      run: (n) => infer(n, () => this.engine.infer(slot, n)),
      runFrames: (n, planned) => {
        if (!views.frames) return Promise.reject(new DeimError('ERR_BACKEND_FAILED', 'GPU preprocessing is off for this engine (opened without frame staging)'));
        return infer(n, () => this.engine.inferFrames(slot, n, planned.plan, planned.tables, planned.lut));
      },
      readInput: async (n) => {
        check(n);
        await this.engine.readInput(slot, n);
        return views.input.subarray(0, n * (views.input.length / capacity));
      },
      release: () => {
        if (released) return;
        released = true;
        const next = this.waiting.shift();
        if (next) next(slot);
        else this.free.push(slot);
      },
    };
  }

  /** The outputs of the slot's last run as views (labels converted from int64 once, here). */
  private outputs(views: SlotViews, n: number): RawDetections {
    const k = n * this.perImage;
    if (views.labels64Words) {
      // Class indices are 0..79: the low 32-bit word of each little-endian int64 holds the whole value.
      const words = views.labels64Words;
      const labels = views.labels32;
      for (let i = 0; i < k; i++) labels[i] = words[2 * i]!;
    }
    return {
      batch: n,
      perImage: this.perImage,
      labels: views.labels32.subarray(0, k),
      boxes: views.boxes.subarray(0, 4 * k),
      scores: views.scores.subarray(0, k),
    };
  }

  /** The Backend seam: copies `batch` into slots (chunks of maxBatch, in flight together) and the outputs out. */
  async run(batch: TensorBatch): Promise<RawDetections> {
    if (this.closing) throw new DeimError('ERR_CLOSED', 'the TensorRT backend is closed');
    const size = this.io.inputSize!;
    const item = 3 * size * size;
    if (!Number.isInteger(batch.batch) || batch.batch < 1 || batch.images.length !== batch.batch * item || batch.sizes.length !== batch.batch * 2) {
      throw new DeimError('ERR_TENSOR_SIZE', `Expected ${batch.batch} x [3,${size},${size}] images and ${batch.batch} (width,height) pairs but received ${batch.images.length} floats and ${batch.sizes.length} sizes`);
    }
    const perImage = this.perImage;
    const labels = new Int32Array(batch.batch * perImage);
    const boxes = new Float32Array(batch.batch * perImage * 4);
    const scores = new Float32Array(batch.batch * perImage);
    const chunks: Promise<void>[] = [];
    for (let start = 0; start < batch.batch; start += this.maxBatch) {
      const n = Math.min(this.maxBatch, batch.batch - start);
      chunks.push((async () => {
        const lease = await this.acquire();
        try {
          lease.input.set(batch.images.subarray(start * item, (start + n) * item));
          for (let i = 0; i < n; i++) lease.setSize(i, batch.sizes[2 * (start + i)]!, batch.sizes[2 * (start + i) + 1]!);
          const raw = await lease.run(n);
          labels.set(raw.labels, start * perImage);
          boxes.set(raw.boxes, start * perImage * 4);
          scores.set(raw.scores, start * perImage);
        } finally {
          lease.release();
        }
      })());
    }
    await Promise.all(chunks);
    return { batch: batch.batch, perImage, labels, boxes, scores };
  }

  /** Idempotent: every call returns the first call's promise, settled once the engine is freed. */
  close(): Promise<void> {
    this.closing ??= this.engine.close();
    return this.closing;
  }
}
