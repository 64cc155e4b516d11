/**
 * The Detector: resolves the model once, checks the options, opens one runner for the chosen
 * execution path (src/runners.ts: CPU per-core pool, CPU single session, or TensorRT) and hands it
 * batches of images; the runner decodes, preprocesses, runs the model and postprocesses.
 */
import type { Runner } from './backends/runner.js';
import { chooseBackend } from './backends/registry.js';
import type { BackendName } from './backends/types.js';
import { checkDetectorOptions, postFor, type CpuLayout, type DetectOptions, type DetectorOptions } from './detector-options.js';
import { DeimError } from './errors.js';
import { failureOf, toSource } from './detector-inputs.js';
import { describeInput, type ImageInput } from './image/input.js';
import type { ResizeMode, RgbImage } from './image/types.js';
import type { ClassInfo } from './models/classes.js';
import { modelSpec, type ModelSpec } from './models/model-spec.js';
import { resolveModel } from './models/resolve.js';
import { VARIANTS, type VariantConfig } from './models/variants.js';
import { MemoryBudget } from './pool/budget.js';
import type { PostOptions } from './pool/messages.js';
import type { DetectionFailure, DetectionResult } from './postprocess/types.js';
import { openRunner } from './runners.js';
import { detectVideo, type VideoDetection, type VideoOptions } from './video/pipeline.js';

export type { CpuLayout, DetectOptions, DetectorOptions } from './detector-options.js';

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

/** close() settles within this even when a backend does not (workers are terminated sooner). */
const CLOSE_BOUND_MS = 10_000;

export class Detector {
  readonly modelPath: string;
  readonly spec: ModelSpec;
  /** The variant's configuration, when the model is one of the eight. */
  readonly variant: VariantConfig | undefined;
  readonly backendName: BackendName;
  /** The backend as results and logs name it: "cpu", "tensorrt" or "tensorrt (simulated)". */
  readonly backendLabel: string;
  /** Why this backend was chosen ("requested", or what auto saw). */
  readonly backendReason: string;
  readonly layout: CpuLayout | 'gpu';
  readonly description: string;
  readonly classes: ClassInfo;
  readonly resize: ResizeMode;
  readonly batchSize: number;
  /** Bytes of decoded full-size pixels held at once (DetectorOptions.maxMemory or its default). */
  readonly maxMemory: number;
  /** The score threshold detections need (tracking uses it as the display threshold). */
  get threshold(): number {
    return this.post.threshold;
  }
  private readonly counters: DetectorStats;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly runner: Runner,
    private readonly post: PostOptions,
    init: { reason: string; layout: CpuLayout | 'gpu'; classes: ClassInfo; resize: ResizeMode; batch: number; maxMemory: number },
  ) {
    this.spec = runner.spec;
    this.modelPath = runner.spec.path;
    this.variant = runner.spec.variant ? VARIANTS[runner.spec.variant] : undefined;
    this.backendName = runner.backend;
    this.backendLabel = runner.label ?? runner.backend;
    this.backendReason = init.reason;
    this.layout = init.layout;
    this.description = runner.description;
    this.classes = init.classes;
    this.resize = init.resize;
    this.batchSize = init.batch;
    this.maxMemory = init.maxMemory;
    this.counters = { images: 0, failed: 0, inferMs: 0, preprocessMs: 0, runners: runner.parallelism };
  }

  static async create(options: DetectorOptions = {}): Promise<Detector> {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `Expected an options object (or nothing) for Detector.create but received ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
    }
    const model = resolveModel(options.model ?? 'atto', options.modelDir !== undefined ? { modelDir: options.modelDir } : {});
    const o = checkDetectorOptions(options);
    const decision = chooseBackend(options.backend ?? 'auto');
    const overrides = { ...(options.normalization ? { normalization: options.normalization } : {}), ...(options.inputSize ? { inputSize: options.inputSize } : {}) };
    const runner = await openRunner(decision.name === 'tensorrt' ? 'tensorrt' : `cpu-${o.layout}`, {
      model, specOf: (io) => modelSpec(model, io, overrides), resize: o.resize, classes: o.classes, threads: o.threads, batch: o.batch,
      budget: MemoryBudget.create(o.maxMemory),
      ...pick(options, 'device', 'engine', 'precision', 'gpuPreprocess', 'cudaGraphs'),
      ...(options.preload ? { preload: { sources: options.preload.images.map(toSource), returnImage: options.preload.returnImage === true, alone: options.preload.alone === true, post: postFor(o.post, o.classes, { returnImage: options.preload.returnImage === true }) } } : {}),
    });
    const layout = decision.name === 'tensorrt' ? 'gpu' : o.layout;
    return new Detector(runner, o.post, { reason: decision.reason, layout, classes: o.classes, resize: o.resize, batch: o.batch, maxMemory: o.maxMemory });
  }

  /** Detects objects in one image; throws a DeimError naming the input when it cannot. */
  async detect(input: ImageInput, options: DetectOptions = {}): Promise<DetectorResult> {
    const [result] = await this.runChunk([input], postFor(this.post, this.classes, options));
    if ('error' in result!) {
      throw new DeimError(result.error.code as DeimError['code'], result.error.message, { input: result.file ?? describeInput(input) });
    }
    return result!;
  }

  /**
   * Detects objects in many images, `batch` per model call, all chunks in flight at once (the
   * runner bounds the work). A failed image gives a DetectionFailure in its place; the rest go on.
   */
  async detectBatch(inputs: readonly ImageInput[], options: DetectOptions = {}): Promise<Array<DetectorResult | DetectionFailure>> {
    if (!Array.isArray(inputs)) throw new DeimError('ERR_INVALID_ARGUMENT', 'detectBatch takes an array of images');
    const post = postFor(this.post, this.classes, options);
    const chunks: Array<Promise<Array<DetectorResult | DetectionFailure>>> = [];
    for (let i = 0; i < inputs.length; i += this.batchSize) {
      const chunk = inputs.slice(i, i + this.batchSize);
      // A chunk whose run fails (a backend error, a closed detector) fails its own images only:
      // the other chunks go on, and the caller sees each image's failure in its place.
      chunks.push(this.runChunk(chunk, post).catch((e: unknown) => chunk.map((input) => failureOf(input, e))));
    }
    return (await Promise.all(chunks)).flat();
  }

  /**
   * Detects objects in every frame of a video file, image sequence, stream URL or webcam:
   * `for await (const frame of detector.detectVideo('clip.mp4', { output: 'annotated.mp4' }))`.
   * Frames are decoded ahead and run several at once; results come in frame order.
   * Stop it with `options.signal` (the output file is finished cleanly).
   */
  detectVideo(source: string, options: VideoOptions = {}): VideoDetection {
    return detectVideo(this, source, options);
  }

  /** Counters since creation, for summaries. */
  stats(): DetectorStats {
    return { ...this.counters };
  }

  /**
   * Frees the runner; every call returns the same promise, which settles within a bounded time
   * whatever is running (work in flight is rejected with ERR_CLOSED).
   */
  close(): Promise<void> {
    return (this.closing ??= Promise.race([
      this.runner.close().catch(() => undefined),
      new Promise<void>((resolve) => setTimeout(resolve, CLOSE_BOUND_MS).unref()),
    ]));
  }

  /** `await using detector = await Detector.create(...)` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private async runChunk(inputs: readonly ImageInput[], post: PostOptions): Promise<Array<DetectorResult | DetectionFailure>> {
    if (this.closing) throw new DeimError('ERR_CLOSED', 'the detector is closed');
    const { results, timing } = await this.runner.run(inputs.map(toSource), post);
    this.counters.preprocessMs += timing.preprocessMs;
    this.counters.inferMs += timing.inferMs;
    for (const r of results) 'error' in r ? this.counters.failed++ : this.counters.images++;
    return results;
  }
}

function pick<T extends object, K extends keyof T>(o: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
