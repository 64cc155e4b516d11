/**
 * The figures of an evaluation by name, and one call from parsed JSON to figures: what the
 * eval and compare commands (and library users) need.
 *
 * @example
 * const { metrics } = evaluateJson(annotations, 'instances.json', results, 'results.json');
 * metrics.AP; // 0.290...
 */
import { parseGroundTruth, parseResults, type GroundTruth } from './coco-dataset.js';
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
  let selected = annotations;
  let skipImageIds: Set<number> | undefined;
  if (imageIds && typeof annotations === 'object' && annotations !== null) {
    selected = selectImages(annotations, imageIds);
    const keep = new Set(imageIds);
    const all = (annotations as { images?: Array<{ id: number }> }).images ?? [];
    skipImageIds = new Set(all.map((img) => img.id).filter((id) => !keep.has(id)));
  }
  const gt = parseGroundTruth(selected, annotationsSource);
  const result = evaluateCoco(gt, parseResults(results, gt, resultsSource, { skipImageIds }));
  const perClass = perCategoryAp(result.accumulated).map((c, k) => ({ id: gt.categoryIds[k]!, name: gt.categoryNames[k]!, ...c }));
  return { gt, result, metrics: namedStats(result.stats), perClass };
}
