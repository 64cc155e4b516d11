/**
 * Thresholded linear assignment, the matching step of ByteTrack. The reference calls
 * `lap.lapjv(cost, extend_cost=True, cost_limit=t)`: the optimal assignment of the augmented
 * problem in which leaving a row or a column unmatched costs t / 2, so a pair is matched only when
 * that lowers the total, i.e. when its cost is below t.
 *
 * The cost limit is part of the problem, not a filter applied afterwards: a pair below t can stay
 * unmatched when that lets two other pairs match.
 *
 * Solver: lap's own Jonker-Volgenant code (lapjv), ported step for step, on the augmented square
 * matrix as lap builds it, so that ties between equally good assignments are broken as the
 * reference breaks them (SciPy's solver, the fixtures' former stand-in, breaks them otherwise).
 * Usually the problem is first split into the connected components of the graph of pairs that
 * can match (cost <= t) and each component is solved on its own: the same optimum, at a cost that
 * grows with the crowd around an object instead of with the whole frame. When two candidate
 * pairs cost exactly the same the problem is solved whole, so that ties are broken as lapjv
 * breaks them (up to WHOLE_PROBLEM_LIMIT rows + columns).
 */

export interface Assignment {
  /** [row, column] pairs, by row. */
  matches: Array<[number, number]>;
  unmatchedRows: number[];
  unmatchedCols: number[];
}

/** lap's LARGE: the starting value of the column prices and of the second-best reduced cost. */
const LARGE = 1000000;

/**
 * lap's lapjv_internal (gatagat/lap, _lapjv_cpp/lapjv.cpp): the Jonker-Volgenant solver on the
 * square problem `cost` (n x n, row-major), step for step (column reduction and reduction
 * transfer, two rounds of augmenting row reduction, then augmentation by shortest paths), with the
 * same scan orders and comparisons, so that where several assignments are equally good it picks
 * the one lap picks. Returns the column of each row.
 */
export function lapjv(n: number, cost: Float64Array): Int32Array {
  const x = new Int32Array(n).fill(-1);
  const y = new Int32Array(n);
  const v = new Float64Array(n).fill(LARGE);
  const freeRows = new Int32Array(n);
  if (n === 0) return x;
  // _ccrrt_dense: column reduction.
  for (let i = 0; i < n; i++) {
    const base = i * n;
    for (let j = 0; j < n; j++) {
      const c = cost[base + j]!;
      if (c < v[j]!) {
        v[j] = c;
        y[j] = i;
      }
    }
  }
  const unique = new Uint8Array(n).fill(1);
  for (let j = n - 1; j >= 0; j--) {
    const i = y[j]!;
    if (x[i]! < 0) x[i] = j;
    else {
      unique[i] = 0;
      y[j] = -1;
    }
  }
  let nFree = 0;
  for (let i = 0; i < n; i++) {
    if (x[i]! < 0) freeRows[nFree++] = i;
    else if (unique[i]) {
      // Reduction transfer.
      const j = x[i]!;
      let min = LARGE;
      const base = i * n;
      for (let j2 = 0; j2 < n; j2++) {
        if (j2 === j) continue;
        const c = cost[base + j2]! - v[j2]!;
        if (c < min) min = c;
      }
      v[j] = v[j]! - min;
    }
  }
  // _carr_dense, at most twice: augmenting row reduction.
  for (let round = 0; nFree > 0 && round < 2; round++) {
    let current = 0;
    let newFree = 0;
    let rrCnt = 0;
    while (current < nFree) {
      rrCnt++;
      const freeI = freeRows[current++]!;
      const base = freeI * n;
      let j1 = 0;
      let v1 = cost[base]! - v[0]!;
      let j2 = -1;
      let v2 = LARGE;
      for (let j = 1; j < n; j++) {
        const c = cost[base + j]! - v[j]!;
        if (c < v2) {
          if (c >= v1) {
            v2 = c;
            j2 = j;
          } else {
            v2 = v1;
            v1 = c;
            j2 = j1;
            j1 = j;
          }
        }
      }
      let i0 = y[j1]!;
      const v1New = v[j1]! - (v2 - v1);
      const v1Lowers = v1New < v[j1]!;
      if (rrCnt < current * n) {
        if (v1Lowers) v[j1] = v1New;
        else if (i0 >= 0 && j2 >= 0) {
          j1 = j2;
          i0 = y[j2]!;
        }
        if (i0 >= 0) {
          if (v1Lowers) freeRows[--current] = i0;
          else freeRows[newFree++] = i0;
        }
      } else if (i0 >= 0) {
        freeRows[newFree++] = i0;
      }
      x[freeI] = j1;
      y[j1] = freeI;
    }
    nFree = newFree;
  }
  // _ca_dense: augmentation, one shortest path (find_path_dense) per free row.
  if (nFree > 0) {
    const pred = new Int32Array(n);
    const cols = new Int32Array(n);
    const d = new Float64Array(n);
    for (let f = 0; f < nFree; f++) {
      const freeI = freeRows[f]!;
      let j = findPath(n, cost, freeI, y, v, pred, cols, d);
      let i = -1;
      let k = 0;
      while (i !== freeI) {
        i = pred[j]!;
        y[j] = i;
        const t = x[i]!;
        x[i] = j;
        j = t;
        if (++k > n) throw new Error('assignment: no augmenting path');
      }
    }
  }
  return x;
}

/** find_path_dense with _find_dense and _scan_dense: the closest free column from startI. */
function findPath(n: number, cost: Float64Array, startI: number, y: Int32Array, v: Float64Array, pred: Int32Array, cols: Int32Array, d: Float64Array): number {
  let lo = 0;
  let hi = 0;
  let finalJ = -1;
  let nReady = 0;
  const sBase = startI * n;
  for (let i = 0; i < n; i++) {
    cols[i] = i;
    pred[i] = startI;
    d[i] = cost[sBase + i]! - v[i]!;
  }
  while (finalJ === -1) {
    if (lo === hi) {
      // _find_dense: the columns at the minimum d go onto the SCAN list.
      nReady = lo;
      hi = lo + 1;
      let mind = d[cols[lo]!]!;
      for (let k = hi; k < n; k++) {
        const j = cols[k]!;
        if (d[j]! <= mind) {
          if (d[j]! < mind) {
            hi = lo;
            mind = d[j]!;
          }
          cols[k] = cols[hi]!;
          cols[hi++] = j;
        }
      }
      for (let k = lo; k < hi; k++) {
        const j = cols[k]!;
        if (y[j]! < 0) finalJ = j;
      }
    }
    if (finalJ === -1) {
      // _scan_dense, on copies of lo and hi: when it finds a free column it returns without storing them.
      let sLo = lo;
      let sHi = hi;
      scan: while (sLo !== sHi) {
        let j = cols[sLo++]!;
        const i = y[j]!;
        const mind = d[j]!;
        const base = i * n;
        const h = cost[base + j]! - v[j]! - mind;
        for (let k = sHi; k < n; k++) {
          j = cols[k]!;
          const credIJ = cost[base + j]! - v[j]! - h;
          if (credIJ < d[j]!) {
            d[j] = credIJ;
            pred[j] = i;
            if (credIJ === mind) {
              if (y[j]! < 0) {
                finalJ = j;
                break scan;
              }
              cols[k] = cols[sHi]!;
              cols[sHi++] = j;
            }
          }
        }
      }
      if (finalJ === -1) {
        lo = sLo;
        hi = sHi;
      }
    }
  }
  const mind = d[cols[lo]!]!;
  for (let k = 0; k < nReady; k++) {
    const j = cols[k]!;
    v[j] = v[j]! + (d[j]! - mind);
  }
  return finalJ;
}

/**
 * lap.lapjv(real, extend_cost=True, cost_limit=2 * half) as lap's _lapjv.pyx builds it: the
 * (nr + nc) square matrix with `real` (nr x nc, row-major) top left, `half` in the real x dummy and
 * dummy x real blocks and 0 in the dummy x dummy block, solved whole by lapjv. Returns the column
 * of each real row (>= nc: unmatched).
 */
export function solveAugmented(real: Float64Array, nr: number, nc: number, half: number): Int32Array {
  const n = nr + nc;
  const ext = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const base = i * n;
    if (i < nr) {
      for (let j = 0; j < nc; j++) ext[base + j] = real[i * nc + j]!;
      ext.fill(half, base + nc, base + n);
    } else {
      ext.fill(half, base, base + nc);
    }
  }
  return lapjv(n, ext).subarray(0, nr);
}

/**
 * Above this many rows + columns a problem with ties is still split (solving it whole gets slow:
 * lapjv on the augmented 1,200 x 1,200 matrix takes about 33 ms here, 2,000 x 2,000 about 56 ms).
 * Split, a tie may be broken otherwise than lapjv breaks it on the whole problem: seen on a crowd
 * of 1,500 objects with duplicated boxes tracked class-agnostic (117 of 8,216 boxes with another
 * id), not at 650 to 1,200 objects. With deimv2's own detections (300 a frame at most) it takes
 * more than 900 tracked and lost tracks in one association.
 */
export const WHOLE_PROBLEM_LIMIT = 1200;

/**
 * Matches rows to columns of `cost` (nRows x nCols, row-major) where leaving one unmatched costs
 * thresh / 2 (the reference's lapjv with extend_cost and cost_limit = thresh). `overlapping`
 * lists the only pairs that may cost less than 1 (IoU costs: the boxes that overlap).
 *
 * Only pairs with cost <= thresh can be matched. When no two of them cost exactly the same (and
 * none costs exactly thresh), the optimum is unique in practice and is found per connected
 * component of those pairs, which is fast. When some do (duplicate boxes, e.g. one object
 * detected as two classes and tracked class-agnostic), the problem is solved whole as the
 * reference does, so that the tie is broken the same way.
 */
export function linearAssignment(cost: Float64Array, nRows: number, nCols: number, thresh: number, overlapping?: { pairs: Int32Array; count: number }): Assignment {
  const matches: Array<[number, number]> = [];
  const half = thresh / 2;
  if (nRows > 0 && nCols > 0) {
    // Pairs that can match, and whether any two of them tie.
    const edgeRows: number[] = [];
    const edgeCols: number[] = [];
    const seen = new Set<number>();
    let tie = false;
    const consider = (i: number, j: number) => {
      const c = cost[i * nCols + j]!;
      if (c <= thresh) {
        edgeRows.push(i);
        edgeCols.push(j);
        if (!tie && (c === thresh || seen.has(c) || (seen.add(c), false))) tie = true;
      }
    };
    if (overlapping && thresh < 1) {
      // Every other pair costs 1 > thresh.
      for (let k = 0; k < overlapping.count; k++) consider(overlapping.pairs[2 * k]!, overlapping.pairs[2 * k + 1]!);
    } else {
      for (let i = 0; i < nRows; i++) for (let j = 0; j < nCols; j++) consider(i, j);
    }
    if (tie && nRows + nCols <= WHOLE_PROBLEM_LIMIT) {
      const col4row = solveAugmented(nRows * nCols === cost.length ? cost : cost.subarray(0, nRows * nCols), nRows, nCols, half);
      for (let i = 0; i < nRows; i++) if (col4row[i]! < nCols) matches.push([i, col4row[i]!]);
    } else if (edgeRows.length > 0) {
      solveByComponents(cost, nRows, nCols, half, edgeRows, edgeCols, matches);
    }
  }
  const rowUsed = new Uint8Array(nRows);
  const colUsed = new Uint8Array(nCols);
  for (const [r, c] of matches) {
    rowUsed[r] = 1;
    colUsed[c] = 1;
  }
  const unmatchedRows: number[] = [];
  const unmatchedCols: number[] = [];
  for (let i = 0; i < nRows; i++) if (!rowUsed[i]) unmatchedRows.push(i);
  for (let j = 0; j < nCols; j++) if (!colUsed[j]) unmatchedCols.push(j);
  return { matches, unmatchedRows, unmatchedCols };
}

/** Splits rows and columns into the connected components of the candidate pairs and solves each. */
function solveByComponents(cost: Float64Array, nRows: number, nCols: number, half: number, edgeRows: number[], edgeCols: number[], matches: Array<[number, number]>): void {
  const parent = new Int32Array(nRows + nCols);
  for (let k = 0; k < parent.length; k++) parent[k] = k;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const linked = new Uint8Array(nRows + nCols);
  for (let e = 0; e < edgeRows.length; e++) {
    const i = edgeRows[e]!;
    const j = nRows + edgeCols[e]!;
    linked[i] = 1;
    linked[j] = 1;
    const a = find(i);
    const b = find(j);
    if (a !== b) parent[a < b ? b : a] = a < b ? a : b;
  }
  const groups = new Map<number, { rows: number[]; cols: number[] }>();
  for (let k = 0; k < nRows + nCols; k++) {
    if (!linked[k]) continue;
    const root = find(k);
    let g = groups.get(root);
    if (!g) groups.set(root, (g = { rows: [], cols: [] }));
    if (k < nRows) g.rows.push(k);
    else g.cols.push(k - nRows);
  }
  for (const { rows, cols } of groups.values()) {
    if (rows.length === 1 && cols.length === 1) {
      // What lapjv does with the augmented 2 x 2 problem [[c, t/2], [t/2, 0]], worked out: column
      // reduction matches the pair when c <= t/2, else augmenting row reduction does when c - t/2 <= t/2.
      const c = cost[rows[0]! * nCols + cols[0]!]!;
      if (c <= half || c - half <= half) matches.push([rows[0]!, cols[0]!]);
      continue;
    }
    const sub = new Float64Array(rows.length * cols.length);
    for (let a = 0; a < rows.length; a++) for (let b = 0; b < cols.length; b++) sub[a * cols.length + b] = cost[rows[a]! * nCols + cols[b]!]!;
    const col4row = solveAugmented(sub, rows.length, cols.length, half);
    for (let a = 0; a < rows.length; a++) if (col4row[a]! < cols.length) matches.push([rows[a]!, cols[col4row[a]!]!]);
  }
  matches.sort((p, q) => p[0] - q[0]);
}
