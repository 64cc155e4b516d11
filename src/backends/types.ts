/**
 * The Backend seam: everything that runs a DEIMv2 graph (onnxruntime on the CPU, TensorRT on a
 * GPU) implements this. A backend only runs tensors; preprocessing and policy live elsewhere.
 */
export type BackendName = 'cpu' | 'tensorrt';
export type BackendChoice = BackendName | 'auto';

/** Raw model outputs for a batch of N images, K detections each (K = 300 for the exports). */
export interface RawDetections {
  /** Images in the batch. */
  readonly batch: number;
  /** Detections per image. */
  readonly perImage: number;
  /** [N*K] class indices 0..C-1. */
  readonly labels: Int32Array;
  /** [N*K*4] x1,y1,x2,y2 in the pixel frame given by `sizes`. */
  readonly boxes: Float32Array;
  /** [N*K] scores in [0,1]. */
  readonly scores: Float32Array;
}

/** A batch ready for a backend: `images` is float32 [N,3,S,S]; `sizes` holds (width,height) pairs. */
export interface TensorBatch {
  readonly images: Float32Array;
  readonly sizes: Int32Array;
  readonly batch: number;
}

export interface ModelIO {
  /** Square input side read from the graph, or undefined when the graph leaves it dynamic. */
  readonly inputSize: number | undefined;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface Backend {
  readonly name: BackendName;
  /** Human-readable description: provider, threads, device, precision. */
  readonly description: string;
  readonly io: ModelIO;
  /** Largest batch one run() accepts (Infinity when unbounded). */
  readonly maxBatch: number;
  run(batch: TensorBatch): Promise<RawDetections>;
  close(): Promise<void>;
}

export interface BackendAvailability {
  readonly name: BackendName;
  readonly available: boolean;
  /** Why it is unavailable, or what it runs on when it is available. */
  readonly detail: string;
}
