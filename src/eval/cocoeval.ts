/**
 * COCO bounding-box evaluation, equal to pycocotools' COCOeval (iouType 'bbox') with its
 * default parameters: 10 IoU thresholds, 101 recall points, 4 area ranges, maxDets 1/10/100.
 *
 * The three phases are pycocotools' evaluate() / accumulate() / summarize(), reworked for
 * speed but not for results: every double is computed in the same order as pycocotools and
 * its C helper (maskApi.c bbIou) compute it, ties in score keep the order of numpy's stable
 * mergesort, and means use numpy's pairwise summation.
 *
 * @example
 * const result = evaluateCoco(gt, dt);
 * console.log(result.stats[0]); // AP @[ IoU=0.50:0.95 | area=all | maxDets=100 ]
 */
import type { Detections, GroundTruth } from './coco-dataset.js';
import { timeStage } from '../perf/stage-times.js';

export interface EvalParams {
  iouThresholds: Float64Array;
  recallThresholds: Float64Array;
  /** Ascending; the last one is how many detections per image and category are matched. */
  maxDets: number[];
  /** [min, max] area, both inclusive, one per label. */
  areaRanges: [number, number][];
  areaLabels: string[];
}

/** numpy.linspace(start, stop, num) to the bit: start + i*step, with the last point set to stop. */
export function linspace(start: number, stop: number, num: number): Float64Array {
  const out = new Float64Array(num);
  const step = (stop - start) / (num - 1);
  for (let i = 0; i < num; i++) out[i] = i * step + start;
  if (num > 1) out[num - 1] = stop;
  return out;
}

/** pycocotools' Params.setDetParams(). */
export function defaultParams(): EvalParams {
  return {
    iouThresholds: linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1),
    recallThresholds: linspace(0.0, 1.0, Math.round((1.0 - 0.0) / 0.01) + 1),
    maxDets: [1, 10, 100],
    areaRanges: [[0, 1e10], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e10]],
    areaLabels: ['all', 'small', 'medium', 'large'],
  };
}

/** What a detection became at one IoU threshold and area range (pycocotools' dtm / dtIg). */
const FALSE_POSITIVE = 0;
const TRUE_POSITIVE = 1;
const IGNORED = 2;
/** In MatchTable.uniform: the outcomes differ between IoU thresholds. */
const MIXED = 255;

/**
 * Per-image matching results: the detections kept (top maxDets per image and category, by
 * score), grouped by category, then image ascending, then score rank; and for each of them,
 * at each area range and IoU threshold, one of FALSE_POSITIVE / TRUE_POSITIVE / IGNORED.
 */
export interface MatchTable {
  params: EvalParams;
  categoryCount: number;
  /** Kept detections of category k are slots categoryStart[k] .. categoryStart[k+1]-1. */
  categoryStart: Uint32Array;
  /** Score of each slot. */
  score: Float64Array;
  /** Rank of each slot among its image's detections of its category (0 = best score). */
  rank: Uint32Array;
  /** outcome[s * A*T + a*T + t]: a slot's outcomes side by side (accumulate reads them so). */
  outcome: Uint8Array;
  /** uniform[s * A + a]: the slot's outcome at every IoU threshold when they are all one, else MIXED. */
  uniform: Uint8Array;
  /** Ground-truth boxes that count (not crowd, area in range), per [k*A + a]. */
  positives: Uint32Array;
}

/** Indices 0..n-1 grouped by key (0..keyCount-1), keeping input order within a key. */
function groupByKey(keys: Uint32Array, n: number, keyCount: number): { start: Uint32Array; order: Uint32Array } {
  const start = new Uint32Array(keyCount + 1);
  for (let i = 0; i < n; i++) start[keys[i] + 1]++;
  for (let k = 0; k < keyCount; k++) start[k + 1] += start[k];
  const fill = start.slice(0, keyCount);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[fill[keys[i]]++] = i;
  return { start, order };
}

/** Runs this long are sorted by insertion before they are merged. */
const INSERTION_RUN = 16;

/** Whether index x goes before index y: the better score, or on a tie the lower index. */
function before(score: Float64Array, x: number, y: number): boolean {
  const sx = score[x];
  const sy = score[y];
  return sx > sy || (sx === sy && x < y);
}

/** Insertion sort of group[from, to) by `before`. */
function insertionSort(group: Uint32Array, score: Float64Array, from: number, to: number): void {
  for (let i = from + 1; i < to; i++) {
    const x = group[i];
    let j = i - 1;
    while (j >= from && before(score, x, group[j])) {
      group[j + 1] = group[j];
      j--;
    }
    group[j + 1] = x;
  }
}

let mergeScratch = new Uint32Array(0);

/**
 * Sorts `group` (indices into `score`) best score first, ties by index: the order numpy's stable
 * mergesort gives on -score over indices in ascending order (a total order, so any correct sort
 * gives it). Insertion-sorted runs, merged bottom up: no comparator calls.
 */
function sortByScore(group: Uint32Array, score: Float64Array): void {
  const n = group.length;
  if (n <= 64) return insertionSort(group, score, 0, n);
  for (let from = 0; from < n; from += INSERTION_RUN) insertionSort(group, score, from, Math.min(n, from + INSERTION_RUN));
  if (n <= INSERTION_RUN) return;
  if (mergeScratch.length < n) mergeScratch = new Uint32Array(n);
  let src: Uint32Array = group;
  let dst: Uint32Array = mergeScratch.subarray(0, n);
  for (let width = INSERTION_RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(n, lo + width);
      const hi = Math.min(n, lo + 2 * width);
      let i = lo, j = mid, o = lo;
      while (i < mid && j < hi) dst[o++] = before(score, src[j], src[i]) ? src[j++] : src[i++];
      while (i < mid) dst[o++] = src[i++];
      while (j < hi) dst[o++] = src[j++];
    }
    [src, dst] = [dst, src];
  }
  if (src !== group) group.set(src);
}

/**
 * pycocotools' evaluate(): IoU of every kept detection with every ground-truth box of the same
 * image and category, then the greedy matching per area range and IoU threshold.
 */
export function matchDetections(gt: GroundTruth, dt: Detections, params: EvalParams = defaultParams()): MatchTable {
  const I = gt.imageIds.length;
  const K = gt.categoryIds.length;
  const T = params.iouThresholds.length;
  const A = params.areaRanges.length;
  const maxDet = params.maxDets[params.maxDets.length - 1];
  const g = gt.boxes;

  // Group by (category, image): category-major, so that each category's slots are contiguous
  // and in image order, which is the order accumulate() concatenates them in.
  const gtKeys = new Uint32Array(g.count);
  for (let j = 0; j < g.count; j++) gtKeys[j] = g.categoryIndex[j] * I + g.imageIndex[j];
  const dtKeys = new Uint32Array(dt.count);
  for (let j = 0; j < dt.count; j++) dtKeys[j] = dt.categoryIndex[j] * I + dt.imageIndex[j];
  const gtGroups = groupByKey(gtKeys, g.count, K * I);
  const dtGroups = groupByKey(dtKeys, dt.count, K * I);

  // Sort each group's detections by score, best first, stable (numpy's mergesort), keep maxDet.
  const kept = new Uint32Array(dt.count);
  const keptStart = new Uint32Array(K * I + 1);
  let slots = 0;
  for (let key = 0; key < K * I; key++) {
    keptStart[key] = slots;
    const s0 = dtGroups.start[key];
    const s1 = dtGroups.start[key + 1];
    if (s1 === s0) continue;
    const group = dtGroups.order.subarray(s0, s1);
    sortByScore(group, dt.score);
    const n = Math.min(s1 - s0, maxDet);
    kept.set(group.subarray(0, n), slots);
    slots += n;
  }
  keptStart[K * I] = slots;

  const table: MatchTable = {
    params,
    categoryCount: K,
    categoryStart: new Uint32Array(K + 1),
    score: new Float64Array(slots),
    rank: new Uint32Array(slots),
    outcome: new Uint8Array(A * T * slots),
    uniform: new Uint8Array(A * slots),
    positives: new Uint32Array(K * A),
  };
  for (let k = 0; k <= K; k++) table.categoryStart[k] = keptStart[k * I];
  for (let s = 0; s < slots; s++) table.score[s] = dt.score[kept[s]];

  // Scratch buffers, grown to the largest group; nothing is allocated per detection.
  let ious = new Float64Array(0);
  let maxIou = new Float64Array(0);
  let dtOut = new Uint8Array(0);
  let candidate = new Uint32Array(0);
  let gtOrder = new Uint32Array(0);
  let gtIgnored = new Uint8Array(0);
  let gtCrowd = new Uint8Array(0);
  let gtMatched = new Uint8Array(0);
  const { iouThresholds, areaRanges } = params;
  const { outcome, uniform, positives } = table;
  const gtOrderAll = gtGroups.order;
  const step = A * T;
  let minThreshold = Infinity;
  for (let t = 0; t < T; t++) minThreshold = Math.min(minThreshold, Math.min(iouThresholds[t], 1 - 1e-10));

  for (let key = 0; key < K * I; key++) {
    const g0 = gtGroups.start[key];
    const G = gtGroups.start[key + 1] - g0;
    const d0 = keptStart[key];
    const D = keptStart[key + 1] - d0;
    if (G === 0 && D === 0) continue;
    const k = Math.floor(key / I);
    for (let d = 0; d < D; d++) table.rank[d0 + d] = d;

    if (D * G > ious.length) ious = new Float64Array(D * G * 2);
    if (D > maxIou.length) {
      maxIou = new Float64Array(D * 2);
      dtOut = new Uint8Array(D * 2);
      candidate = new Uint32Array(D * 2);
    }
    if (G > gtOrder.length) {
      gtOrder = new Uint32Array(G * 2);
      gtIgnored = new Uint8Array(G * 2);
      gtCrowd = new Uint8Array(G * 2);
      gtMatched = new Uint8Array(G * 2);
    }
    maxIou.fill(0, 0, D);
    // maskApi.c bbIou, operation for operation: ious[d*G + gi] for gt gi in file order.
    for (let gi = 0; gi < G; gi++) {
      const o = 4 * gtOrderAll[g0 + gi];
      const gx = g.xywh[o], gy = g.xywh[o + 1], gw = g.xywh[o + 2], gh = g.xywh[o + 3];
      const ga = gw * gh;
      const crowd = g.iscrowd[gtOrderAll[g0 + gi]] !== 0;
      for (let d = 0; d < D; d++) {
        const p = 4 * kept[d0 + d];
        const dx = dt.xywh[p], dy = dt.xywh[p + 1], dw = dt.xywh[p + 2], dh = dt.xywh[p + 3];
        const da = dw * dh;
        let iou = 0;
        const w = Math.min(dw + dx, gw + gx) - Math.max(dx, gx);
        if (w > 0) {
          const h = Math.min(dh + dy, gh + gy) - Math.max(dy, gy);
          if (h > 0) {
            const inter = w * h;
            iou = inter / (crowd ? da : da + ga - inter);
          }
        }
        ious[d * G + gi] = iou;
        if (iou > maxIou[d]) maxIou[d] = iou;
      }
    }

    // The detections that reach the lowest threshold with some ground truth, in score order.
    let candidates = 0;
    for (let d = 0; d < D; d++) if (maxIou[d] >= minThreshold) candidate[candidates++] = d;

    for (let a = 0; a < A; a++) {
      const [lo, hi] = areaRanges[a];
      // Ground truth in matching order: counted boxes first, ignored last, each in file order.
      let n = 0;
      for (let pass = 0; pass < 2; pass++) {
        for (let gi = 0; gi < G; gi++) {
          const j = gtOrderAll[g0 + gi];
          const ignored = g.iscrowd[j] !== 0 || g.area[j] < lo || g.area[j] > hi ? 1 : 0;
          if (ignored !== pass) continue;
          gtOrder[n] = gi;
          gtIgnored[n] = ignored;
          gtCrowd[n] = g.iscrowd[j] !== 0 ? 1 : 0;
          n++;
        }
        if (pass === 0) positives[k * A + a] += n;
      }
      // What a detection that matches nothing becomes (by its area alone). A detection whose best
      // IoU is below every threshold matches nothing at any: it is that at every threshold, and
      // only an IGNORED one needs writing (the tables start as FALSE_POSITIVE).
      for (let d = 0; d < D; d++) {
        const dtArea = dt.area[kept[d0 + d]];
        const v = dtArea < lo || dtArea > hi ? IGNORED : FALSE_POSITIVE;
        dtOut[d] = v;
        if (v === IGNORED && maxIou[d] < minThreshold) {
          const base = (d0 + d) * step + a * T;
          for (let t = 0; t < T; t++) outcome[base + t] = IGNORED;
          uniform[(d0 + d) * A + a] = IGNORED;
        }
      }
      if (candidates === 0) continue;

      for (let t = 0; t < T; t++) {
        const row = d0 * step + a * T + t;
        gtMatched.fill(0, 0, G);
        const threshold = Math.min(iouThresholds[t], 1 - 1e-10);
        // Detections in score order; those that cannot match at any threshold change no match.
        for (let c = 0; c < candidates; c++) {
          const d = candidate[c];
          let m = -1;
          // No IoU reaches the threshold: no match (what the scan below finds too, sooner).
          if (maxIou[d] >= threshold) {
            let best = threshold;
            // With no ground truth (or no detection) pycocotools skips matching entirely.
            for (let r = 0; r < G; r++) {
              if (gtMatched[r] && gtCrowd[r] === 0) continue;
              // Matched a counted box already, and only ignored ones are left: stop.
              if (m > -1 && gtIgnored[m] === 0 && gtIgnored[r] === 1) break;
              const iou = ious[d * G + gtOrder[r]];
              if (iou < best) continue;
              best = iou;
              m = r;
            }
          }
          let v: number;
          if (m === -1) {
            v = dtOut[d];
          } else {
            gtMatched[m] = 1;
            if (gtIgnored[m]) v = IGNORED;
            else if (g.annotationId[gtOrderAll[g0 + gtOrder[m]]] !== 0) v = TRUE_POSITIVE;
            // pycocotools stores the matched annotation id in dtm and tests it for truth: a
            // match to annotation id 0 counts as no match.
            else v = dtOut[d];
          }
          outcome[row + d * step] = v;
          const u = (d0 + d) * A + a;
          if (t === 0) uniform[u] = v;
          else if (uniform[u] !== v) uniform[u] = MIXED;
        }
      }
    }
  }
  return table;
}

export interface Accumulated {
  params: EvalParams;
  /** precision[(((t*R + r)*K + k)*A + a)*M + m], -1 where there is no ground truth. */
  precision: Float64Array;
  /** recall[((t*K + k)*A + a)*M + m], -1 where there is no ground truth. */
  recall: Float64Array;
  counts: { T: number; R: number; K: number; A: number; M: number };
}

/** numpy's np.spacing(1): the eps pycocotools adds to precision's denominator. */
const EPS = 2.220446049250313e-16;

/** pycocotools' accumulate(): precision at 101 recall points and maximum recall. */
export function accumulate(table: MatchTable): Accumulated {
  const { params } = table;
  const T = params.iouThresholds.length;
  const R = params.recallThresholds.length;
  const K = table.categoryCount;
  const A = params.areaRanges.length;
  const M = params.maxDets.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);

  let maxInCategory = 0;
  for (let k = 0; k < K; k++) maxInCategory = Math.max(maxInCategory, table.categoryStart[k + 1] - table.categoryStart[k]);
  const sorted = new Uint32Array(maxInCategory);
  // The detections (slots) of each maxDets, in score order.
  const selected = Array.from({ length: M }, () => new Uint32Array(maxInCategory));
  const selectedCount = new Uint32Array(M);
  // rc and pr of every IoU threshold, computed side by side: [t * maxInCategory + i].
  const rc = new Float64Array(T * maxInCategory);
  const pr = new Float64Array(T * maxInCategory);
  const tps = new Float64Array(T);
  const fps = new Float64Array(T);
  const kept = new Uint32Array(T);
  const AT = A * T;
  const { outcome, uniform, score, rank } = table;

  for (let k = 0; k < K; k++) {
    const s0 = table.categoryStart[k];
    const count = table.categoryStart[k + 1] - s0;
    // One stable sort per category serves every area range and maxDets: the detections of a
    // smaller maxDets are a subsequence, and a stable sort keeps a subsequence's order.
    const order = sorted.subarray(0, count);
    for (let i = 0; i < count; i++) order[i] = s0 + i;
    sortByScore(order, score);
    for (let m = 0; m < M; m++) {
      const maxDet = params.maxDets[m];
      const sel = selected[m];
      let nd = 0;
      for (let i = 0; i < count; i++) if (rank[order[i]] < maxDet) sel[nd++] = order[i];
      selectedCount[m] = nd;
    }

    for (let a = 0; a < A; a++) {
      const positives = table.positives[k * A + a];
      if (positives === 0) continue;
      for (let m = 0; m < M; m++) {
        const sel = selected[m];
        const nd = selectedCount[m];
        tps.fill(0);
        fps.fill(0);
        kept.fill(0);
        // Detections that are false positives at every threshold, counted once for all of them.
        let fpEverywhere = 0;
        // The cumulative sums of pycocotools' tps and fps, every threshold at once (the same
        // divisions, in the same order for each threshold). An ignored detection changes neither
        // sum, so its rc and pr repeat the previous entry's: it is left out, which changes no
        // figure (a run of equal entries has one recall, one enveloped precision; a leading run
        // of zeros is raised by the envelope to what the first kept entry gets). A false
        // positive's entry is left out too: its rc repeats the previous entry's and its pr is at
        // most the previous entry's (0 at the start), so no recall, no searchsorted position and
        // no enveloped precision changes; it only adds 1 to the fp count of the entries after it.
        for (let i = 0; i < nd; i++) {
          const slot = sel[i];
          const u = uniform[slot * A + a];
          if (u === IGNORED) continue;
          if (u === FALSE_POSITIVE) {
            fpEverywhere++;
            continue;
          }
          const base = slot * AT + a * T;
          for (let t = 0; t < T; t++) {
            const o = outcome[base + t];
            if (o === IGNORED) continue;
            if (o !== TRUE_POSITIVE) {
              fps[t]++;
              continue;
            }
            const tp = ++tps[t];
            const at = t * maxInCategory + kept[t]++;
            rc[at] = tp / positives;
            pr[at] = tp / ((fps[t] + fpEverywhere) + tp + EPS);
          }
        }
        for (let t = 0; t < T; t++) {
          const off = t * maxInCategory;
          const nd = kept[t];
          recall[((t * K + k) * A + a) * M + m] = nd > 0 ? rc[off + nd - 1] : 0;
          // Precision envelope: the best precision at this recall or beyond.
          for (let i = off + nd - 1; i > off; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
          // np.searchsorted(rc, recThrs, side='left'); thresholds past the last recall stay 0.
          let i = 0;
          for (let r = 0; r < R; r++) {
            const threshold = params.recallThresholds[r];
            while (i < nd && rc[off + i] < threshold) i++;
            precision[(((t * R + r) * K + k) * A + a) * M + m] = i < nd ? pr[off + i] : 0;
          }
        }
      }
    }
  }
  return { params, precision, recall, counts: { T, R, K, A, M } };
}

/** numpy's pairwise summation of a float64 array (what np.mean uses), bit for bit. */
export function pairwiseSum(values: Float64Array, start = 0, n = values.length): number {
  if (n < 8) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[start + i];
    return sum;
  }
  if (n <= 128) {
    const r = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => values[start + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += values[start + i + j];
    let sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; i++) sum += values[start + i];
    return sum;
  }
  let half = Math.floor(n / 2);
  half -= half % 8;
  return pairwiseSum(values, start, half) + pairwiseSum(values, start + half, n - half);
}

export interface SummaryLine {
  kind: 'AP' | 'AR';
  /** null: averaged over all IoU thresholds. */
  iouThreshold: number | null;
  area: string;
  maxDets: number;
  value: number;
}

/** The 12 lines of pycocotools' summarize() for bbox, in its order. */
const SUMMARY_LINES: ReadonlyArray<[SummaryLine['kind'], number | null, string, number]> = [
  ['AP', null, 'all', 2], ['AP', 0.5, 'all', 2], ['AP', 0.75, 'all', 2],
  ['AP', null, 'small', 2], ['AP', null, 'medium', 2], ['AP', null, 'large', 2],
  ['AR', null, 'all', 0], ['AR', null, 'all', 1], ['AR', null, 'all', 2],
  ['AR', null, 'small', 2], ['AR', null, 'medium', 2], ['AR', null, 'large', 2],
];

/**
 * pycocotools' _summarize for one setting: the mean of the precision (AP) or recall (AR) entries
 * > -1 at that IoU threshold (null: all ten), area label and maxDets, over all categories or
 * the given category indices; -1 when there is none.
 */
export function summaryValue(acc: Accumulated, kind: 'AP' | 'AR', iouThreshold: number | null, area: string, maxDets: number, categories?: number[]): number {
  const { T, R, K, A, M } = acc.counts;
  const a = acc.params.areaLabels.indexOf(area);
  const m = acc.params.maxDets.indexOf(maxDets);
  // pycocotools selects the threshold with ==, so a threshold not in the list gives -1.
  const ts = iouThreshold === null
    ? [...Array(T).keys()]
    : [...Array(T).keys()].filter((t) => acc.params.iouThresholds[t] === iouThreshold);
  const ks = categories ?? [...Array(K).keys()];
  if (a < 0 || m < 0) return -1;
  // The entries > -1 in the C order of numpy's s[t, r, k, a, m] (resp. s[t, k, a, m]) selection,
  // then their mean, or -1 when there are none (pycocotools' _summarize).
  const valid = new Float64Array(ts.length * ks.length * (kind === 'AP' ? R : 1));
  let n = 0;
  for (const t of ts) {
    if (kind === 'AP') {
      for (let r = 0; r < R; r++) {
        for (const k of ks) {
          const v = acc.precision[(((t * R + r) * K + k) * A + a) * M + m];
          if (v > -1) valid[n++] = v;
        }
      }
    } else {
      for (const k of ks) {
        const v = acc.recall[((t * K + k) * A + a) * M + m];
        if (v > -1) valid[n++] = v;
      }
    }
  }
  return n === 0 ? -1 : (0 + pairwiseSum(valid, 0, n)) / n;
}

/** pycocotools' summarize() for bbox: the 12 standard figures. */
export function summarize(acc: Accumulated): SummaryLine[] {
  const { maxDets } = acc.params;
  return SUMMARY_LINES.map(([kind, iouThreshold, area, m]) => ({
    kind,
    iouThreshold,
    area,
    maxDets: maxDets[m],
    value: summaryValue(acc, kind, iouThreshold, area, maxDets[m]),
  }));
}

export interface CocoEvalResult {
  lines: SummaryLine[];
  /** The 12 figures, as pycocotools' COCOeval.stats. */
  stats: number[];
  accumulated: Accumulated;
}

/** evaluate + accumulate + summarize, as `COCOeval(gt, dt, 'bbox')` does. */
export function evaluateCoco(gt: GroundTruth, dt: Detections, params: EvalParams = defaultParams()): CocoEvalResult {
  const matched = timeStage('eval: match', () => matchDetections(gt, dt, params));
  const accumulated = timeStage('eval: accumulate', () => accumulate(matched));
  const lines = timeStage('eval: summarize', () => summarize(accumulated));
  return { lines, stats: lines.map((l) => l.value), accumulated };
}

/** AP @[IoU=0.50:0.95 | all | maxDets=100] of each category (-1 without ground truth). */
export function perCategoryAp(acc: Accumulated): { ap: number; ap50: number }[] {
  const last = acc.params.maxDets[acc.params.maxDets.length - 1];
  return [...Array(acc.counts.K).keys()].map((k) => ({
    ap: summaryValue(acc, 'AP', null, 'all', last, [k]),
    ap50: summaryValue(acc, 'AP', 0.5, 'all', last, [k]),
  }));
}
