/**
 * The one agreement rule between a reference run and a candidate run of the same model: post-build
 * validation of a TensorRT engine against the CPU, and the CPU test of the mixed-FP16 graph, both
 * call compareDetections. Each reference detection must be found again (same class, IoU >= 0.5),
 * scores and boxes within the precision's tolerance; boxes within THRESHOLD_MARGIN of the
 * threshold may cross it either way.
 */
import type { Detection } from './types.js';

export interface ValidationFigures {
  readonly passed: boolean;
  readonly images: number;
  /** CPU detections (score >= threshold) the engine had to reproduce. */
  readonly referenceBoxes: number;
  readonly matched: number;
  readonly missed: number;
  readonly extra: number;
  readonly maxScoreDelta: number;
  readonly meanScoreDelta: number;
  readonly minIoU: number;
  readonly threshold: number;
  readonly message: string;
}

/** Tolerances per precision: FP16 legitimately moves scores and boxes a little. */
export const VALIDATION_TOLERANCE = {
  fp32: { maxScoreDelta: 0.02, minIoU: 0.95 },
  fp16: { maxScoreDelta: 0.1, minIoU: 0.85 },
} as const;
/** Boxes this close to the threshold may cross it either way without counting as missed or extra. */
export const THRESHOLD_MARGIN = 0.05;
const MATCH_IOU = 0.5;

export function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  const h = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union > 0 ? inter / union : 0;
}

type Det = Pick<Detection, 'classId' | 'score' | 'box'>;

/**
 * Compares detections image by image: each reference box is matched greedily (highest score first) to
 * the unmatched candidate of the same class with the highest IoU >= 0.5.
 * @example compareDetections([cpuDets], [trtDets], { threshold: 0.4, precision: 'fp16' }).passed
 */
export function compareDetections(
  reference: readonly (readonly Det[])[],
  candidate: readonly (readonly Det[])[],
  options: { threshold: number; precision: 'fp16' | 'fp32' },
): ValidationFigures {
  const tol = VALIDATION_TOLERANCE[options.precision];
  const sure = options.threshold + THRESHOLD_MARGIN;
  let referenceBoxes = 0, matched = 0, missed = 0, extra = 0, maxScoreDelta = 0, sumDelta = 0, minIoU = 1;
  for (let i = 0; i < reference.length; i++) {
    const refs = [...reference[i]!].filter((d) => d.score >= options.threshold).sort((a, b) => b.score - a.score);
    const cands = (candidate[i] ?? []).filter((d) => d.score >= options.threshold);
    const used = new Set<number>();
    referenceBoxes += refs.length;
    for (const r of refs) {
      let best = -1, bestIoU = MATCH_IOU;
      cands.forEach((c, j) => {
        if (used.has(j) || c.classId !== r.classId) return;
        const v = iou(r.box, c.box);
        if (v >= bestIoU) { best = j; bestIoU = v; }
      });
      if (best < 0) {
        if (r.score >= sure) missed++;
        continue;
      }
      used.add(best);
      matched++;
      const delta = Math.abs(cands[best]!.score - r.score);
      maxScoreDelta = Math.max(maxScoreDelta, delta);
      sumDelta += delta;
      minIoU = Math.min(minIoU, bestIoU);
    }
    cands.forEach((c, j) => { if (!used.has(j) && c.score >= sure) extra++; });
  }
  const problems: string[] = [];
  if (missed > 0) problems.push(`${missed} CPU detection(s) missing`);
  if (extra > 0) problems.push(`${extra} detection(s) the CPU does not make`);
  if (maxScoreDelta > tol.maxScoreDelta) problems.push(`score delta ${maxScoreDelta.toFixed(3)} > ${tol.maxScoreDelta}`);
  if (matched > 0 && minIoU < tol.minIoU) problems.push(`box IoU ${minIoU.toFixed(3)} < ${tol.minIoU}`);
  const passed = problems.length === 0;
  return {
    passed, images: reference.length, referenceBoxes, matched, missed, extra,
    maxScoreDelta, meanScoreDelta: matched ? sumDelta / matched : 0, minIoU: matched ? minIoU : 1,
    threshold: options.threshold,
    message: passed
      ? `${matched}/${referenceBoxes} CPU detections matched on ${reference.length} image(s), max score delta ${maxScoreDelta.toFixed(4)}`
      : problems.join('; '),
  };
}

