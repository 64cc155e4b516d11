/**
 * The figures of an evaluation by name, and one call from parsed JSON to figures: what the
 * eval and compare commands (and library users) need.
 *
 * @example
 * const { metrics } = evaluateJson(annotations, 'instances.json', results, 'results.json');
 * metrics.AP; // 0.290...
 */
import { parseGroundTruth, parseResults, parseResultsFile, parseResultsText, type Detections, type GroundTruth } from './coco-dataset.js';
import { evaluateCoco, perCategoryAp, type CocoEvalResult } from './cocoeval.js';
import { selectImages } from './detect-images.js';

/** Names of pycocotools' 12 stats, in order. */
export const STAT_NAMES = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl'] as const;
export type StatName = (typeof STAT_NAMES)[number];

export function namedStats(stats: readonly number[]): Record<StatName, number> {
  return Object.fromEntries(STAT_NAMES.map((name, i) => [name, stats[i]!])) as Record<StatName, number>;
}

export interface JsonEvaluation {
  gt: GroundTruth;
  result: CocoEvalResult;
  metrics: Record<StatName, number>;
  /** Per category: id, name, AP and AP50 (-1 without ground truth). */
  perClass: Array<{ id: number; name: string; ap: number; ap50: number }>;
}

/**
 * Scores a parsed results list against a parsed annotations object. With `imageIds`, only those
 * images count (pycocotools' `params.imgIds`), e.g. the images a detector actually ran on.
 */
export function evaluateJson(
  annotations: unknown,
  annotationsSource: string,
  results: unknown,
  resultsSource: string,
  imageIds?: readonly number[],
): JsonEvaluation {
  const { gt, skipImageIds } = groundTruthFor(annotations, annotationsSource, imageIds);
  return scored(gt, parseResults(results, gt, resultsSource, { skipImageIds }));
}

/**
 * evaluateJson of a results file's bytes (readResultsBytes): the same figures and the same errors,
 * in the same order (the results' JSON errors before the annotations' ones), read without
 * JSON.parse when the file has the plain shape.
 */
export function evaluateResultsBytes(
  annotations: unknown,
  annotationsSource: string,
  results: Buffer,
  resultsSource: string,
  imageIds?: readonly number[],
): JsonEvaluation {
  let selected: ReturnType<typeof groundTruthFor>;
  try {
    selected = groundTruthFor(annotations, annotationsSource, imageIds);
  } catch (e) {
    // evaluateJson had the results parsed first: their error, if they have one, comes first.
    parseResultsText(results, resultsSource);
    throw e;
  }
  const { gt, skipImageIds } = selected;
  return scored(gt, parseResultsFile(results, gt, resultsSource, { skipImageIds }));
}

/** The ground truth of the images evaluated, and the images of the annotations left out. */
function groundTruthFor(annotations: unknown, annotationsSource: string, imageIds?: readonly number[]): { gt: GroundTruth; skipImageIds?: Set<number> } {
  let selected = annotations;
  let skipImageIds: Set<number> | undefined;
  if (imageIds && typeof annotations === 'object' && annotations !== null) {
    selected = selectImages(annotations, imageIds);
    const keep = new Set(imageIds);
    const all = (annotations as { images?: Array<{ id: number }> }).images ?? [];
    skipImageIds = new Set(all.map((img) => img.id).filter((id) => !keep.has(id)));
  }
  return { gt: parseGroundTruth(selected, annotationsSource), skipImageIds };
}

function scored(gt: GroundTruth, dt: Detections): JsonEvaluation {
  const result = evaluateCoco(gt, dt);
  const perClass = perCategoryAp(result.accumulated).map((c, k) => ({ id: gt.categoryIds[k]!, name: gt.categoryNames[k]!, ...c }));
  return { gt, result, metrics: namedStats(result.stats), perClass };
}
