/** Messages between the main thread and pool workers (every worker speaks this protocol). */
import type { ModelIO } from '../backends/types.js';
import type { InputTransform, RawImage, ResizeMode, RgbImage } from '../image/types.js';
import type { ClassInfo } from '../models/classes.js';
import type { ModelSpec } from '../models/model-spec.js';
import type { DetectionFailure, DetectionResult } from '../postprocess/types.js';

/** What every worker is started with; `stage` carries what its own stage needs (e.g. the model path). */
export interface WorkerInit {
  /** The pixel budget shared by all workers of a Detector (see budget.ts). */
  budget: SharedArrayBuffer;
  /** Milliseconds one decode may take before it fails (sharp's timeout is per pipeline). */
  decodeTimeoutMs?: number;
  stage?: Record<string, unknown>;
}

export type TaskSource =
  | { kind: 'path'; path: string }
  | { kind: 'bytes'; bytes: Uint8Array; name: string }
  | { kind: 'raw'; image: RawImage; name: string };

export interface PostOptions {
  threshold: number;
  classIds?: number[];
  maxDetections: number;
  /** Send the decoded upright RGB images back (for drawing). */
  returnImage?: boolean;
}

export interface TaskConfig {
  spec: ModelSpec;
  resize: ResizeMode;
  classes: ClassInfo;
}

export type ToWorker =
  | { type: 'configure'; config: TaskConfig }
  | { type: 'task'; id: number; items: TaskSource[]; post: PostOptions }
  | { type: 'close' };

export interface SerializedError {
  code: string;
  message: string;
  input?: string;
}

export interface TaskTiming {
  /** Milliseconds the model itself ran for this task. */
  inferMs: number;
  /** Milliseconds spent resizing + normalising. */
  preprocessMs: number;
}

export type DetectedImage = (DetectionResult & { image?: RgbImage }) | DetectionFailure;

/** detections: a worker that runs the model; tensor: the batch tensor; decoded: RGB images. */
export type TaskOutput =
  | { kind: 'detections'; results: DetectedImage[]; timing: TaskTiming }
  | {
      kind: 'tensor';
      /** [M,3,S,S] for the M items that decoded, in item order. */
      images: Float32Array;
      /** Per item: its index in the batch tensor, or a failure. */
      slots: Array<{ index: number; transform: InputTransform; file?: string } | DetectionFailure>;
      /** Per item, the decoded image when returnImage was asked. */
      decoded?: Array<RgbImage | undefined>;
      timing: TaskTiming;
    }
  | {
      kind: 'decoded';
      /** The M items that decoded, as RGB, in item order. */
      images: RgbImage[];
      /** Per item: its index in `images`, or a failure. */
      slots: Array<{ index: number; file?: string } | DetectionFailure>;
      timing: TaskTiming;
    };

export type FromWorker =
  | { type: 'ready'; io?: ModelIO; description?: string }
  | { type: 'init-error'; error: SerializedError }
  | { type: 'result'; id: number; output: TaskOutput }
  | { type: 'task-error'; id: number; error: SerializedError };
