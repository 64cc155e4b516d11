/** The Detector's options, checked and completed with their defaults in one place. */
import os from 'node:os';
import type { BackendChoice } from './backends/types.js';
import { DeimError } from './errors.js';
import type { ResizeMode } from './image/types.js';
import { COCO_CLASSES, loadClassNames, type ClassInfo } from './models/classes.js';
import type { Normalization } from './models/variants.js';
import { checkMemoryBudget } from './pool/budget.js';
import type { PostOptions } from './pool/messages.js';
import { checkMaxDetections, checkThreshold, classFilter, DEFAULT_MAX_DETECTIONS, DEFAULT_THRESHOLD } from './postprocess/detections.js';

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
  /**
   * Bytes of decoded full-size pixels in memory at once, over all workers (each decode waits for
   * room; an image larger than the budget is decoded alone). Default: 1/16 of the machine's
   * memory, between 256 MiB and 1 GiB.
   */
  maxMemory?: number;
  /** TensorRT: GPU index. */
  device?: number;
  /** TensorRT: a prebuilt engine file. */
  engine?: string;
  /** TensorRT: engine precision. */
  precision?: 'fp16' | 'fp32';
  /** TensorRT: resize and normalise on the GPU (default true); false makes the tensor on the CPU. */
  gpuPreprocess?: boolean;
  /** TensorRT: replay inference from CUDA graphs (default true). */
  cudaGraphs?: boolean;
  /**
   * The image files the first detect()/detectBatch() call will get, in order (and whether it asks
   * for returnImage): on the CPU they are decoded and resized while the model loads, so a one-shot
   * run does not wait for both in turn (create() resolves once both are done). A first call with
   * other images runs as usual. `alone: true`: these are all the images this Detector will get (a
   * one-shot run): the CPU single layout then preprocesses them on the calling thread and starts
   * its preprocessing worker only if another call comes. Without `alone` (more images follow,
   * `images: []` for a video), the CPU pool layout starts its per-core workers at once, and only
   * them (the first worker detects the preloaded images).
   */
  preload?: { images: readonly string[]; returnImage?: boolean; alone?: boolean };
}

export interface DetectOptions {
  threshold?: number;
  classes?: string[];
  maxDetections?: number;
  /** Also return the decoded upright RGB image (for drawing). */
  returnImage?: boolean;
}

export interface CheckedOptions {
  resize: ResizeMode;
  batch: number;
  layout: CpuLayout;
  threads: number;
  classes: ClassInfo;
  post: PostOptions;
  maxMemory: number;
}

const fail = (message: string, input: unknown) => new DeimError('ERR_INVALID_ARGUMENT', message, { input: String(input) });

export function checkDetectorOptions(options: DetectorOptions): CheckedOptions {
  const resize = options.resize ?? 'stretch';
  if (resize !== 'stretch' && resize !== 'letterbox') throw fail(`resize must be "stretch" or "letterbox", got "${resize}"`, resize);
  const batch = options.batch ?? 1;
  if (!Number.isInteger(batch) || batch < 1 || batch > 1024) throw fail(`batch must be an integer from 1 to 1024, got ${options.batch}`, options.batch);
  const layout = options.layout ?? 'pool';
  if (layout !== 'pool' && layout !== 'single') throw fail(`layout must be "pool" or "single", got "${layout}"`, layout);
  const threads = options.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw fail(`threads must be a positive integer, got ${options.threads}`, options.threads);
  for (const key of ['gpuPreprocess', 'cudaGraphs'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw fail(`${key} must be true or false, got ${String(options[key])}`, options[key]);
  }
  const preload = options.preload;
  if (preload !== undefined && (typeof preload !== 'object' || preload === null || !Array.isArray(preload.images) || !preload.images.every((f) => typeof f === 'string' && f !== '') || (preload.alone !== undefined && typeof preload.alone !== 'boolean'))) {
    throw fail('preload must be { images: [file paths], returnImage?: boolean, alone?: boolean }', JSON.stringify(preload));
  }
  const classes = options.classNames !== undefined ? loadClassNames(options.classNames) : COCO_CLASSES;
  const classIds = classFilter(options.classes, classes);
  const post: PostOptions = {
    threshold: options.threshold === undefined ? DEFAULT_THRESHOLD : checkThreshold(options.threshold),
    maxDetections: options.maxDetections === undefined ? DEFAULT_MAX_DETECTIONS : checkMaxDetections(options.maxDetections),
    ...(classIds ? { classIds: [...classIds] } : {}),
  };
  return { resize, batch, layout, threads, classes, post, maxMemory: checkMemoryBudget(options.maxMemory) };
}

/** The per-call options over the Detector's own. */
export function postFor(base: PostOptions, classes: ClassInfo, options: DetectOptions): PostOptions {
  if (options.threshold === undefined && options.classes === undefined && options.maxDetections === undefined && !options.returnImage) return base;
  const classIds = options.classes !== undefined ? classFilter(options.classes, classes) : undefined;
  return {
    threshold: options.threshold === undefined ? base.threshold : checkThreshold(options.threshold),
    maxDetections: options.maxDetections === undefined ? base.maxDetections : checkMaxDetections(options.maxDetections),
    ...(options.classes !== undefined ? (classIds ? { classIds: [...classIds] } : {}) : base.classIds ? { classIds: base.classIds } : {}),
    ...(options.returnImage ? { returnImage: true } : {}),
  };
}
