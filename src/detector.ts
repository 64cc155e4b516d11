/**
 * The Detector: resolves a model, picks a backend, and runs images through decode -> PIL-faithful
 * resize -> model -> postprocess. On the CPU it has two layouts:
 *  - 'pool' (default): one single-thread onnxruntime session per core in worker threads, each
 *    decoding and resizing its own images, fed from one queue: the highest throughput for folders,
 *    batches and video (these models are small, so intra-op threads barely help them);
 *  - 'single': one session using every core on the main thread's side, for the lowest latency of
 *    one call at a time; decoding and resizing run in a worker.
 * With TensorRT, workers decode and resize and the GPU runs the batches.
 */
import os from 'node:os';
import { DeimError } from './errors.js';
import { chooseBackend } from './backends/registry.js';
import { CpuSession } from './backends/cpu/session.js';
import type { Backend, BackendChoice, BackendName } from './backends/types.js';
import { createTensorRtBackend, type TensorRtBackend } from './backends/tensorrt/index.js';
import { runImagesOnTensorRt } from './backends/tensorrt/run-images.js';
import { describeInput, type ImageInput } from './image/decode.js';
import type { ResizeMode, RgbImage } from './image/types.js';
import { COCO_CLASSES, loadClassNames, type ClassInfo } from './models/classes.js';
import { modelSpec, type ModelSpec } from './models/model-spec.js';
import { resolveModel, type ResolvedModel } from './models/resolve.js';
import { VARIANTS, type Normalization, type VariantConfig } from './models/variants.js';
import { checkMaxDetections, checkThreshold, classFilter, DEFAULT_MAX_DETECTIONS, DEFAULT_THRESHOLD, postprocessOptions, toDetections } from './postprocess/detections.js';
import type { DetectionFailure, DetectionResult } from './postprocess/types.js';
import type { PostOptions, TaskOutput, TaskSource } from './pool/messages.js';
import { WorkerPool } from './pool/worker-pool.js';
import { detectVideo, type VideoDetection, type VideoOptions } from './video/pipeline.js';

export type CpuLayout = 'pool' | 'single';

export interface DetectorOptions {
  /** Variant name (atto, femto, pico, n, s, m, l, x) or a path to an .onnx file. Default atto. */
  model?: string;
  /** Folder searched first for variant files (then $DEIMV2_MODEL_DIR, ./models, the package's models/). */
  modelDir?: string;
  /** 'auto' (default) takes TensorRT when it is available, else the CPU. */
  backend?: BackendChoice;
  /** CPU layout; default 'pool'. */
  layout?: CpuLayout;
  /** Pool workers (default: one per core) or, for 'single', the session's threads (default: all cores). */
  threads?: number;
  /** Score threshold, 0..1; default 0.4 as the official demos. */
  threshold?: number;
  /** Keep only these classes (names or indices). */
  classes?: string[];
  maxDetections?: number;
  /** 'stretch' (default: the official evaluation's) or 'letterbox' (the official ONNX demo's). */
  resize?: ResizeMode;
  /** Images per model call in detectBatch. Default 1. */
  batch?: number;
  /** Class names for a fine-tuned model: a file (one name a line, or JSON) or a list. */
  classNames?: string | string[];
  /** For custom models: input normalisation ('none' = raw [0,1] RGB, 'imagenet' = mean/std). */
  normalization?: Normalization;
  /** For custom models with a dynamic input size. */
  inputSize?: number;
  /** TensorRT: GPU index. */
  device?: number;
  /** TensorRT: a prebuilt engine file. */
  engine?: string;
  /** TensorRT: engine precision. */
  precision?: 'fp16' | 'fp32';
}

export interface DetectOptions {
  threshold?: number;
  classes?: string[];
  maxDetections?: number;
  /** Also return the decoded upright RGB image (for drawing). */
  returnImage?: boolean;
}

export type DetectorResult = DetectionResult & { image?: RgbImage };

export interface DetectorStats {
  images: number;
  failed: number;
  /** Summed milliseconds the model ran (over all workers). */
  inferMs: number;
  preprocessMs: number;
  /** Parallel model runners (pool workers, or 1). */
  runners: number;
}

const hasData = (x: unknown): x is { data: unknown } => typeof x === 'object' && x !== null && 'data' in x;

export class Detector {
  readonly modelPath: string;
  readonly spec: ModelSpec;
  /** The variant's configuration, when the model is one of the eight. */
  readonly variant: VariantConfig | undefined;
  readonly backendName: BackendName;
  /** Why this backend was chosen ("requested", or what auto saw). */
  readonly backendReason: string;
  readonly layout: CpuLayout | 'gpu';
  readonly description: string;
  readonly classes: ClassInfo;
  readonly resize: ResizeMode;
  readonly batchSize: number;
  /** The score threshold detections need (tracking uses it as the display threshold). */
  get threshold(): number {
    return this.post.threshold;
  }
  private readonly post: PostOptions;
  private readonly pool: WorkerPool;
  private readonly backend: Backend | undefined;
  private readonly counters: DetectorStats;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(init: {
    resolved: ResolvedModel; spec: ModelSpec; backendName: BackendName; backendReason: string; layout: CpuLayout | 'gpu';
    description: string; classes: ClassInfo; resize: ResizeMode; batch: number; post: PostOptions; pool: WorkerPool; backend?: Backend;
  }) {
    this.modelPath = init.resolved.path;
    this.spec = init.spec;
    this.variant = init.spec.variant ? VARIANTS[init.spec.variant] : undefined;
    this.backendName = init.backendName;
    this.backendReason = init.backendReason;
    this.layout = init.layout;
    this.description = init.description;
    this.classes = init.classes;
    this.resize = init.resize;
    this.batchSize = init.batch;
    this.post = init.post;
    this.pool = init.pool;
    this.backend = init.backend;
    this.counters = { images: 0, failed: 0, inferMs: 0, preprocessMs: 0, runners: init.backend ? 1 : init.pool.size };
  }

  static async create(options: DetectorOptions = {}): Promise<Detector> {
    const resolved = resolveModel(options.model ?? 'atto', options.modelDir !== undefined ? { modelDir: options.modelDir } : {});
    const resize = options.resize ?? 'stretch';
    if (resize !== 'stretch' && resize !== 'letterbox') throw new DeimError('ERR_INVALID_ARGUMENT', `resize must be "stretch" or "letterbox", got "${resize}"`, { input: String(resize) });
    const batch = options.batch ?? 1;
    if (!Number.isInteger(batch) || batch < 1 || batch > 1024) throw new DeimError('ERR_INVALID_ARGUMENT', `batch must be an integer from 1 to 1024, got ${options.batch}`, { input: String(options.batch) });
    const layout = options.layout ?? 'pool';
    if (layout !== 'pool' && layout !== 'single') throw new DeimError('ERR_INVALID_ARGUMENT', `layout must be "pool" or "single", got "${layout}"`, { input: String(layout) });
    const cores = os.availableParallelism();
    const threads = options.threads ?? cores;
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new DeimError('ERR_INVALID_ARGUMENT', `threads must be a positive integer, got ${options.threads}`, { input: String(options.threads) });
    const classes = options.classNames !== undefined ? loadClassNames(options.classNames) : COCO_CLASSES;
    const classIds = classFilter(options.classes, classes);
    const post: PostOptions = {
      threshold: options.threshold === undefined ? DEFAULT_THRESHOLD : checkThreshold(options.threshold),
      maxDetections: options.maxDetections === undefined ? DEFAULT_MAX_DETECTIONS : checkMaxDetections(options.maxDetections),
      ...(classIds ? { classIds: [...classIds] } : {}),
    };
    const decision = chooseBackend(options.backend ?? 'auto');
    const overrides = { ...(options.normalization ? { normalization: options.normalization } : {}), ...(options.inputSize ? { inputSize: options.inputSize } : {}) };

    if (decision.name === 'cpu') {
      if (layout === 'pool') {
        const pool = await WorkerPool.create({ init: { mode: 'infer', modelPath: resolved.path, threads: 1 }, size: threads });
        const spec = modelSpec(resolved, pool.io!, overrides);
        pool.configure({ spec, resize, classes });
        return new Detector({ resolved, spec, backendName: 'cpu', backendReason: decision.reason, layout, description: `${pool.size} x ${pool.description} (pool)`, classes, resize, batch, post, pool });
      }
      const session = await CpuSession.create(resolved.path, { threads });
      const spec = modelSpec(resolved, session.io, overrides);
      const pool = await WorkerPool.create({ init: { mode: 'preprocess', modelPath: resolved.path, threads: 1 }, size: 1 });
      pool.configure({ spec, resize, classes });
      return new Detector({ resolved, spec, backendName: 'cpu', backendReason: decision.reason, layout, description: `${session.description} (single)`, classes, resize, batch, post, pool, backend: session });
    }

    const backend = await createTensorRtBackend({
      modelPath: resolved.path,
      ...(resolved.variant ? { variant: resolved.variant } : {}),
      ...(options.device !== undefined ? { device: options.device } : {}),
      ...(options.engine !== undefined ? { engine: options.engine } : {}),
      ...(options.precision !== undefined ? { precision: options.precision } : {}),
      maxBatch: Math.max(batch, 1),
    });
    try {
      const spec = modelSpec(resolved, backend.io, overrides);
      // Workers only decode: the main thread writes each batch straight into a slot's pinned memory
      // (RGB bytes for the GPU kernel, or the float tensor), see runTensorRt.
      const pool = await WorkerPool.create({ init: { mode: 'decode', modelPath: resolved.path, threads: 1 }, size: Math.max(1, cores - 1) });
      pool.configure({ spec, resize, classes });
      return new Detector({ resolved, spec, backendName: 'tensorrt', backendReason: decision.reason, layout: 'gpu', description: backend.description, classes, resize, batch, post, pool, backend });
    } catch (e) {
      await backend.close();
      throw e;
    }
  }

  /** Detects objects in one image; throws a DeimError naming the input when it cannot. */
  async detect(input: ImageInput, options: DetectOptions = {}): Promise<DetectorResult> {
    const [result] = await this.runChunk([input], this.postFor(options), options.returnImage === true);
    if ('error' in result!) {
      throw new DeimError(result.error.code as DeimError['code'], result.error.message, { input: result.file ?? describeInput(input) });
    }
    return result!;
  }

  /**
   * Detects objects in many images, `batch` per model call, all chunks in flight at once (the pool
   * bounds the work). A failed image gives a DetectionFailure in its place; the rest go on.
   */
  async detectBatch(inputs: readonly ImageInput[], options: DetectOptions = {}): Promise<Array<DetectorResult | DetectionFailure>> {
    if (!Array.isArray(inputs)) throw new DeimError('ERR_INVALID_ARGUMENT', 'detectBatch takes an array of images');
    const post = this.postFor(options);
    const chunks: Array<Promise<Array<DetectorResult | DetectionFailure>>> = [];
    for (let i = 0; i < inputs.length; i += this.batchSize) chunks.push(this.runChunk(inputs.slice(i, i + this.batchSize), post, options.returnImage === true));
    return (await Promise.all(chunks)).flat();
  }

  /**
   * Detects objects in every frame of a video file, image sequence, stream URL or webcam:
   * `for await (const frame of detector.detectVideo('clip.mp4', { output: 'annotated.mp4' }))`.
   * Frames are decoded ahead and run several at once on the pool; results come in frame order.
   * Stop it with `options.signal` (the output file is finished cleanly).
   */
  detectVideo(source: string, options: VideoOptions = {}): VideoDetection {
    return detectVideo(this, source, options);
  }

  /** Counters since creation, for summaries. */
  stats(): DetectorStats {
    return { ...this.counters };
  }

  /** Frees the workers and the backend; every call returns the same promise. */
  close(): Promise<void> {
    this.closed = true;
    return (this.closing ??= this.release());
  }

  private async release(): Promise<void> {
    await Promise.all([this.pool.close(), this.backend?.close()]);
  }

  /** `await using detector = await Detector.create(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private postFor(options: DetectOptions): PostOptions {
    if (options.threshold === undefined && options.classes === undefined && options.maxDetections === undefined && !options.returnImage) return this.post;
    const classIds = options.classes !== undefined ? classFilter(options.classes, this.classes) : undefined;
    return {
      threshold: options.threshold === undefined ? this.post.threshold : checkThreshold(options.threshold),
      maxDetections: options.maxDetections === undefined ? this.post.maxDetections : checkMaxDetections(options.maxDetections),
      ...(options.classes !== undefined ? (classIds ? { classIds: [...classIds] } : {}) : this.post.classIds ? { classIds: this.post.classIds } : {}),
      ...(options.returnImage ? { returnImage: true } : {}),
    };
  }

  private async runChunk(inputs: readonly ImageInput[], post: PostOptions, returnImage: boolean): Promise<Array<DetectorResult | DetectionFailure>> {
    if (this.closed) throw new DeimError('ERR_CLOSED', 'the detector is closed');
    const sources: TaskSource[] = inputs.map((input) => toSource(input));
    const output = await this.pool.run(sources, returnImage ? { ...post, returnImage: true } : post);
    const results = output.kind === 'detections' ? output.results : await this.runBackend(output, post);
    this.counters.preprocessMs += output.timing.preprocessMs;
    this.counters.inferMs += output.kind === 'detections' ? output.timing.inferMs : 0;
    for (const r of results) 'error' in r ? this.counters.failed++ : this.counters.images++;
    return results;
  }

  /** Preprocessed tensors from the pool -> the main-thread backend (single CPU session); decoded images -> TensorRT. */
  private async runBackend(output: Exclude<TaskOutput, { kind: 'detections' }>, post: PostOptions): Promise<Array<DetectorResult | DetectionFailure>> {
    if (output.kind === 'decoded') return this.runTensorRt(output, post);
    const ok = output.slots.filter((s): s is Exclude<typeof s, DetectionFailure> => !('error' in s));
    if (ok.length === 0) return output.slots as DetectionFailure[];
    const sizes = new Int32Array(2 * ok.length);
    for (const s of ok) {
      sizes[2 * s.index] = s.transform.frameWidth;
      sizes[2 * s.index + 1] = s.transform.frameHeight;
    }
    const t0 = performance.now();
    const raw = await this.backend!.run({ images: output.images, sizes, batch: ok.length });
    this.counters.inferMs += performance.now() - t0;
    const postprocess = postprocessOptions(post, this.classes);
    return output.slots.map((s, i): DetectorResult | DetectionFailure => {
      if ('error' in s) return s;
      const image = output.decoded?.[i];
      return {
        ...(s.file !== undefined ? { file: s.file } : {}),
        width: s.transform.imageWidth,
        height: s.transform.imageHeight,
        detections: toDetections(raw, s.index, s.transform, postprocess),
        ...(image ? { image } : {}),
      };
    });
  }

  /** Decoded images -> TensorRT, written into pinned slot memory and postprocessed from its pinned outputs. */
  private async runTensorRt(output: Extract<TaskOutput, { kind: 'decoded' }>, post: PostOptions): Promise<Array<DetectorResult | DetectionFailure>> {
    if (output.images.length === 0) return output.slots as DetectionFailure[];
    const postprocess = postprocessOptions(post, this.classes);
    const timing = { preprocessMs: 0, inferMs: 0 };
    const found = await runImagesOnTensorRt(this.backend as TensorRtBackend, output.images,
      { inputSize: this.spec.inputSize, resize: this.resize, normalization: this.spec.normalization },
      (raw, i, transform) => ({ transform, detections: toDetections(raw, i, transform, postprocess) }), timing);
    this.counters.preprocessMs += timing.preprocessMs;
    this.counters.inferMs += timing.inferMs;
    return output.slots.map((s): DetectorResult | DetectionFailure => {
      if ('error' in s) return s;
      const image = output.images[s.index]!;
      return {
        ...(s.file !== undefined ? { file: s.file } : {}),
        width: image.width,
        height: image.height,
        detections: found[s.index]!.detections,
        ...(post.returnImage ? { image } : {}),
      };
    });
  }
}

function toSource(input: ImageInput): TaskSource {
  if (typeof input === 'string') return { kind: 'path', path: input };
  if (input instanceof Uint8Array) return { kind: 'bytes', bytes: input, name: describeInput(input) };
  if (hasData(input)) return { kind: 'raw', image: input, name: describeInput(input) };
  throw new DeimError('ERR_INVALID_ARGUMENT', `image input must be a file path, a Buffer of encoded bytes, or {data, width, height, channels}; got ${input === null ? 'null' : typeof input}`);
}
