/**
 * The Runner seam: one runner per execution path (CPU per-core pool, CPU single session,
 * TensorRT). A runner takes images as the API received them and gives detections back; how it
 * decodes, where its model runs and how work is spread are its own business. The Detector picks one
 * (src/runners.ts) and talks to nothing else. A new backend is one folder under backends/ with its
 * runner, plus a line in src/runners.ts.
 */
import type { ResizeMode } from '../image/types.js';
import type { ClassInfo } from '../models/classes.js';
import type { ModelSpec } from '../models/model-spec.js';
import type { ResolvedModel } from '../models/resolve.js';
import type { MemoryBudget } from '../pool/budget.js';
import type { DetectedImage, PostOptions, TaskSource, TaskTiming } from '../pool/messages.js';
import type { BackendName, ModelIO } from './types.js';

export interface RunnerOutput {
  /** One entry per source, in order: detections (with the image when asked), or a failure. */
  readonly results: DetectedImage[];
  readonly timing: TaskTiming;
}

export interface Runner {
  readonly backend: BackendName;
  /** The backend as results and logs name it, when it says more than `backend` ("tensorrt (simulated)"). */
  readonly label?: string;
  /** Provider, threads, device, precision: for logs. */
  readonly description: string;
  readonly spec: ModelSpec;
  /** How many batches it works on at once (pool workers, or 1): callers size their windows with it. */
  readonly parallelism: number;
  /** Runs one batch of images end to end. */
  run(sources: TaskSource[], post: PostOptions): Promise<RunnerOutput>;
  /** Frees everything; settles within a bounded time. */
  close(): Promise<void>;
}

/** Everything a runner is opened with, decided once by the Detector. */
export interface RunnerSetup {
  /** The model, resolved once. */
  readonly model: ResolvedModel;
  /** The model's spec once its graph (or engine) is read. */
  readonly specOf: (io: ModelIO) => ModelSpec;
  readonly resize: ResizeMode;
  readonly classes: ClassInfo;
  /** Pool workers, or the single session's threads. */
  readonly threads: number;
  /** Images per model call. */
  readonly batch: number;
  /** The pixel budget every decode is admitted against. */
  readonly budget: MemoryBudget;
  /** TensorRT. */
  readonly device?: number;
  readonly engine?: string;
  readonly precision?: 'fp16' | 'fp32';
  /** TensorRT: resize and normalise on the GPU (default true); false = the tensor made on the CPU. */
  readonly gpuPreprocess?: boolean;
  /** TensorRT: replay inference from CUDA graphs (default true). */
  readonly cudaGraphs?: boolean;
  /**
   * The files the first run will get: a runner may start on them while the model loads. `alone`:
   * they are all the run has (a runner then need not start workers for later runs up front).
   */
  readonly preload?: {
    readonly sources: TaskSource[];
    readonly returnImage: boolean;
    readonly alone?: boolean;
    /** What the first run will ask (the detector's defaults): a runner that detects ahead uses it. */
    readonly post?: PostOptions;
  };
}

export type OpenRunner = (setup: RunnerSetup) => Promise<Runner>;
