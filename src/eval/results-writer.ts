/**
 * Detector output -> a COCO results list ({image_id, category_id, bbox: [x, y, w, h], score}),
 * the format pycocotools' loadRes reads and `deimv2 eval --write-results` writes (and `--results` scores).
 *
 * @example
 * const results = toCocoResults(397133, detectionResult.detections);
 */
import path from 'node:path';
import { DeimError, errorMessage } from '../errors.js';
import { writeFileAtomic } from '../output/atomic.js';
import { ensureDirectorySync } from '../output/plan.js';
import type { Detection } from '../postprocess/types.js';

export interface CocoResult {
  image_id: number;
  category_id: number;
  bbox: [number, number, number, number];
  score: number;
}

/** The detections of one image, with xyxy boxes turned into COCO's xywh. */
export function toCocoResults(imageId: number, detections: readonly Detection[]): CocoResult[] {
  return detections.map((d) => {
    const [x1, y1, x2, y2] = d.box;
    return { image_id: imageId, category_id: d.categoryId, bbox: [x1, y1, x2 - x1, y2 - y1], score: d.score };
  });
}

/** Writes a results list as JSON (one array; numbers as JavaScript prints them, full precision), atomically, creating its folder. */
export async function writeCocoResults(file: string, results: readonly CocoResult[]): Promise<void> {
  try {
    ensureDirectorySync(path.dirname(path.resolve(file)));
    await writeFileAtomic(file, JSON.stringify(results));
  } catch (e) {
    throw new DeimError('ERR_OUTPUT_WRITE', `${file}: cannot write the results: ${errorMessage(e)}`, { input: file, cause: e });
  }
}
