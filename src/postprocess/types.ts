/** One detected object, in pixels of the upright original image. */
export interface Detection {
  /** Class name ("person"). */
  label: string;
  /** Contiguous class index the model outputs (0..79 for COCO). */
  classId: number;
  /** Dataset category id (COCO: 1..90). */
  categoryId: number;
  score: number;
  /** x1, y1, x2, y2 in original-image pixels, clipped to the image. */
  box: [number, number, number, number];
}

export interface DetectionResult {
  /** The file the image came from, when it came from a file. */
  file?: string;
  width: number;
  height: number;
  detections: Detection[];
}

/** A batch entry that could not be processed: the batch goes on without it. */
export interface DetectionFailure {
  file?: string;
  error: { code: string; message: string };
}
