/**
 * Runs a Detector over the images of a COCO annotations file, for `deimv2 eval --model` and
 * `deimv2 compare`: file names come from the annotations' image entries, every detection is
 * kept (threshold 0, up to 300 per image, as the official evaluation does), and the output is
 * both a COCO results list and the per-image detections.
 *
 * @example
 * const images = findAnnotatedImages(annotationsJson, 'val2017', { limit: 50 });
 * const run = await detectImages({ model: 'femto', backend: 'cpu' }, images);
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Detector, type DetectorOptions } from '../detector.js';
import { DeimError } from '../errors.js';
import type { Detection, DetectionFailure } from '../postprocess/types.js';
import { toCocoResults, type CocoResult } from './results-writer.js';

export interface AnnotatedImage {
  id: number;
  file: string;
}

/**
 * The image entries of an annotations object whose files exist in `dir`, in the file's order,
 * at most `limit` of them. `missing` counts the entries without a file.
 */
export function findAnnotatedImages(annotations: unknown, dir: string, options: { limit?: number; source?: string } = {}): { images: AnnotatedImage[]; invalid: string[]; missing: number } {
  const source = options.source ?? 'annotations';
  const entries = (annotations as { images?: unknown }).images;
  if (!Array.isArray(entries)) throw new DeimError('ERR_EVAL_INPUT', `${source}: "images" must be an array`, { input: source });
  const images: AnnotatedImage[] = [];
  let missing = 0;
  const invalid: string[] = [];
  const seen = new Set<number>();
  (entries as Array<{ id?: unknown; file_name?: unknown }>).forEach((entry, i) => {
    if (options.limit !== undefined && images.length >= options.limit) return;
    if (typeof entry?.id !== 'number' || typeof entry.file_name !== 'string') {
      // Said, not dropped silently: the entry cannot name an image file.
      invalid.push(`images[${i}]: ${typeof entry?.id !== 'number' ? `"id" ${JSON.stringify(entry?.id)} is not a number` : `"file_name" ${JSON.stringify(entry.file_name)} is not a string`}`);
      return;
    }
    if (seen.has(entry.id)) return;
    const file = imageFileIn(dir, entry.file_name, entry.id, source);
    if (!existsSync(file)) {
      missing++;
      return;
    }
    seen.add(entry.id);
    images.push({ id: entry.id, file });
  });
  if (images.length === 0) {
    throw new DeimError('ERR_NO_IMAGES', `none of the ${entries.length} images of ${source} is in ${dir} (file names are taken from "file_name")`, { input: dir });
  }
  return { images, invalid, missing };
}

/**
 * The path of an annotation's `file_name` inside the images folder. A name that would lead out of
 * it (absolute, "..", a NUL byte) is refused for the whole run: such an annotations file is
 * malformed or hostile, and reading its images could read any file the user can.
 */
export function imageFileIn(dir: string, fileName: string, id: number, source = 'annotations'): string {
  const root = path.resolve(dir);
  const file = path.resolve(root, fileName);
  const inside = file.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
  if (fileName === '' || fileName.includes('\0') || path.isAbsolute(fileName) || !inside) {
    throw new DeimError(
      'ERR_EVAL_INPUT',
      `${source}: image ${id} has file_name ${JSON.stringify(fileName)}, which leads outside the images folder ${dir}; file names must be relative paths inside it`,
      { input: source },
    );
  }
  return path.join(dir, fileName);
}

/**
 * A copy of an annotations object that keeps only the given images and their annotations:
 * what pycocotools evaluates with `params.imgIds` set to those images.
 */
export function selectImages<T extends object>(annotations: T, imageIds: readonly number[]): T {
  const keep = new Set(imageIds);
  const a = annotations as { images?: Array<{ id: number }>; annotations?: Array<{ image_id: number }> };
  return {
    ...annotations,
    images: (a.images ?? []).filter((img) => keep.has(img.id)),
    annotations: (a.annotations ?? []).filter((ann) => keep.has(ann.image_id)),
  };
}

export interface DetectImagesRun {
  results: CocoResult[];
  /** Detections of images[i], or null where the image failed. */
  perImage: Array<Detection[] | null>;
  failures: Array<{ file: string; message: string }>;
  seconds: number;
  /** What ran: variant or model path, backend, resize. */
  description: string;
}

/** Detects every image with `options` (threshold forced to 0, maxDetections 300). */
export async function detectImages(
  options: DetectorOptions,
  images: readonly AnnotatedImage[],
  onImage: () => void = () => {},
): Promise<DetectImagesRun> {
  const detector = await Detector.create({ ...options, threshold: 0, maxDetections: 300 });
  const start = performance.now();
  const perImage: Array<Detection[] | null> = new Array(images.length).fill(null);
  const failures: DetectImagesRun['failures'] = [];
  try {
    // A bounded window of batches in flight keeps every worker busy without queueing them all.
    const batch = detector.batchSize;
    const window = Math.max(2, detector.stats().runners * 4) * batch;
    const pending: Array<{ first: number; promise: Promise<Array<{ detections: Detection[] } | DetectionFailure>> }> = [];
    let next = 0;
    const launch = () => {
      while (next < images.length && pending.length * batch < window) {
        const chunk = images.slice(next, next + batch);
        pending.push({ first: next, promise: detector.detectBatch(chunk.map((img) => img.file)) });
        next += chunk.length;
      }
    };
    launch();
    while (pending.length > 0) {
      const { first, promise } = pending.shift()!;
      const entries = await promise;
      launch();
      entries.forEach((entry, j) => {
        const i = first + j;
        if ('error' in entry) failures.push({ file: images[i]!.file, message: entry.error.message });
        else perImage[i] = entry.detections;
        onImage();
      });
    }
  } finally {
    await detector.close();
  }
  const results: CocoResult[] = [];
  perImage.forEach((detections, i) => {
    if (detections) for (const r of toCocoResults(images[i]!.id, detections)) results.push(r);
  });
  const model = detector.spec.variant ?? path.basename(detector.modelPath);
  return {
    results,
    perImage,
    failures,
    seconds: (performance.now() - start) / 1000,
    description: `${model} on ${detector.backendLabel}, ${detector.resize}`,
  };
}
