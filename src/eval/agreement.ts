/**
 * How much two configurations agree on the same images, beyond AP: the detections a user would
 * see (score >= 0.4 by default) paired one to one, same class and IoU >= 0.5, greedily by score.
 *
 * @example
 * const a = detectionAgreement(runA.perImage, runB.perImage);
 * console.log(`${(a.agreement * 100).toFixed(1)}% matched, mean score delta ${a.meanScoreDelta}`);
 */
import type { Detection } from '../postprocess/types.js';

export interface Agreement {
  minScore: number;
  minIou: number;
  /** Detections at score >= minScore in A and in B (over images both processed). */
  countA: number;
  countB: number;
  /** Pairs: same class, IoU >= minIou. */
  matched: number;
  /** 2 * matched / (countA + countB); 1 when neither has any detection. */
  agreement: number;
  /** Mean of (score in B - score in A) over pairs; 0 without pairs. */
  meanScoreDelta: number;
  meanAbsScoreDelta: number;
  meanIou: number;
}

function iou(a: Detection['box'], b: Detection['box']): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
}

/** Pairs the detections of each image: A's in score order take the best-overlapping free B. */
export function detectionAgreement(
  perImageA: ReadonlyArray<readonly Detection[] | null>,
  perImageB: ReadonlyArray<readonly Detection[] | null>,
  options: { minScore?: number; minIou?: number } = {},
): Agreement {
  const minScore = options.minScore ?? 0.4;
  const minIou = options.minIou ?? 0.5;
  let countA = 0;
  let countB = 0;
  let matched = 0;
  let delta = 0;
  let absDelta = 0;
  let iouSum = 0;
  const n = Math.min(perImageA.length, perImageB.length);
  for (let i = 0; i < n; i++) {
    const rawA = perImageA[i];
    const rawB = perImageB[i];
    if (!rawA || !rawB) continue;
    const a = rawA.filter((d) => d.score >= minScore).sort((x, y) => y.score - x.score);
    const b = rawB.filter((d) => d.score >= minScore);
    countA += a.length;
    countB += b.length;
    const taken = new Uint8Array(b.length);
    for (const da of a) {
      let best = -1;
      let bestIou = minIou;
      b.forEach((db, j) => {
        if (taken[j] || db.categoryId !== da.categoryId) return;
        const v = iou(da.box, db.box);
        if (v >= bestIou) {
          bestIou = v;
          best = j;
        }
      });
      if (best < 0) continue;
      taken[best] = 1;
      matched++;
      const d = b[best]!.score - da.score;
      delta += d;
      absDelta += Math.abs(d);
      iouSum += bestIou;
    }
  }
  return {
    minScore,
    minIou,
    countA,
    countB,
    matched,
    agreement: countA + countB === 0 ? 1 : (2 * matched) / (countA + countB),
    meanScoreDelta: matched ? delta / matched : 0,
    meanAbsScoreDelta: matched ? absDelta / matched : 0,
    meanIou: matched ? iouSum / matched : 0,
  };
}
