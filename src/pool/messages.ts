/** Messages between the Detector (main thread) and its pool workers. */
import type { ModelIO } from '../backends/types.js';
import type { InputTransform, RawImage, ResizeMode, RgbImage } from '../image/types.js';
import type { ClassInfo } from '../models/classes.js';
import type { ModelSpec } from '../models/model-spec.js';
import type { DetectionFailure, DetectionResult } from '../postprocess/types.js';

/** infer: own CPU session; preprocess: batch tensor for a main-thread backend; decode: RGB images (TensorRT writes them into pinned memory itself). */
export type WorkerMode = 'infer' | 'preprocess' | 'decode';

export interface WorkerInit {
  mode: WorkerMode;
  modelPath: string;
  /** Intra-op threads of the worker's session (infer mode). */
  threads: number;
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

/** Infer mode: detections; preprocess mode: the batch tensor of the images that decoded. */
export type TaskOutput =
  | { kind: 'detections'; results: Array<(DetectionResult & { image?: RgbImage }) | DetectionFailure>; timing: TaskTiming }
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
