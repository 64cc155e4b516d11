/**
 * IoU as the reference computes it (cython_bbox.bbox_overlaps): boxes [x1, y1, x2, y2] with the
 * +1 pixel convention, areas (x2 - x1 + 1) * (y2 - y1 + 1), in float64, same operation order.
 */

/** IoU of box a (ax1..ay2) with box b (bx1..by2), b playing the reference's "query box". */
export function iouPlusOne(ax1: number, ay1: number, ax2: number, ay2: number, bx1: number, by1: number, bx2: number, by2: number): number {
  const iw = Math.min(ax2, bx2) - Math.max(ax1, bx1) + 1;
  if (!(iw > 0)) return 0;
  const ih = Math.min(ay2, by2) - Math.max(ay1, by1) + 1;
  if (!(ih > 0)) return 0;
  const queryArea = (bx2 - bx1 + 1) * (by2 - by1 + 1);
  const ua = (ax2 - ax1 + 1) * (ay2 - ay1 + 1) + queryArea - iw * ih;
  return (iw * ih) / ua;
}

/**
 * The reference's iou_distance (1 - IoU) between boxes `a` and `b` (flat x1, y1, x2, y2 arrays),
 * optionally fused with the scores of `b` (fuse_score: 1 - (1 - cost) * score), into `out`
 * (row-major a x b).
 */
export function iouCost(a: Float64Array, na: number, b: Float64Array, nb: number, out: Float64Array, scores?: Float64Array): void {
  for (let i = 0; i < na; i++) {
    const ax1 = a[4 * i]!, ay1 = a[4 * i + 1]!, ax2 = a[4 * i + 2]!, ay2 = a[4 * i + 3]!;
    const base = i * nb;
    for (let j = 0; j < nb; j++) {
      const iou = iouPlusOne(ax1, ay1, ax2, ay2, b[4 * j]!, b[4 * j + 1]!, b[4 * j + 2]!, b[4 * j + 3]!);
      const c = 1 - iou;
      out[base + j] = scores ? 1 - (1 - c) * scores[j]! : c;
    }
  }
}

/**
 * As iouCost, but only pairs whose boxes overlap are computed (boxes sorted by x1 and searched):
 * every other entry is exactly 1, as the full computation gives for IoU 0 (fused or not). The
 * overlapping pairs are listed in `holder.pairs` (row, column, ...; grown as needed); returns their count.
 */
export function iouCostSparse(a: Float64Array, na: number, b: Float64Array, nb: number, out: Float64Array, scores: Float64Array | undefined, order: Int32Array, holder: { pairs: Int32Array }): number {
  let pairs = holder.pairs;
  out.fill(1, 0, na * nb);
  if (na === 0 || nb === 0) return 0;
  // b's boxes by x1, and the widest one (bounds how far left an overlapping box can start).
  for (let j = 0; j < nb; j++) order[j] = j;
  const sorted = order.subarray(0, nb).sort((p, q) => b[4 * p]! - b[4 * q]!);
  let maxW = 0;
  for (let j = 0; j < nb; j++) maxW = Math.max(maxW, b[4 * j + 2]! - b[4 * j]!);
  let count = 0;
  for (let i = 0; i < na; i++) {
    const ax1 = a[4 * i]!, ay1 = a[4 * i + 1]!, ax2 = a[4 * i + 2]!, ay2 = a[4 * i + 3]!;
    // First candidate: x1 >= ax1 - maxW - 2 (anything further left ends before ax1 - 1).
    const lowX = ax1 - maxW - 2;
    let lo = 0;
    let hi = nb;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (b[4 * sorted[mid]!]! < lowX) lo = mid + 1;
      else hi = mid;
    }
    const base = i * nb;
    for (let k = lo; k < nb; k++) {
      const j = sorted[k]!;
      const bx1 = b[4 * j]!;
      if (bx1 > ax2 + 1) break; // starts after a ends: no overlap, nor for the rest
      const iou = iouPlusOne(ax1, ay1, ax2, ay2, bx1, b[4 * j + 1]!, b[4 * j + 2]!, b[4 * j + 3]!);
      if (iou === 0) continue;
      const c = 1 - iou;
      out[base + j] = scores ? 1 - (1 - c) * scores[j]! : c;
      if (2 * count + 2 > pairs.length) {
        const grown = new Int32Array(Math.max(64, 2 * pairs.length));
        grown.set(pairs);
        holder.pairs = pairs = grown;
      }
      pairs[2 * count] = i;
      pairs[2 * count + 1] = j;
      count++;
    }
  }
  return count;
}
