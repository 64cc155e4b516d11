/**
 * Thresholded linear assignment, the matching step of ByteTrack. The reference calls
 * `lap.lapjv(cost, extend_cost=True, cost_limit=t)`: the optimal assignment of the augmented
 * problem in which leaving a row or a column unmatched costs t / 2, so a pair is matched only when
 * that lowers the total, i.e. when its cost is below t.
 *
 * Solver: the shortest augmenting path algorithm of Crouse (2016) as SciPy's
 * `linear_sum_assignment` implements it (same scan order, same tie rule), run on the augmented
 * square matrix without building it, which is what the reference fixtures were made with (the
 * reference's own lapjv may break ties between equally good matchings its own way).
 * Usually the problem is first split into the connected components of the graph of pairs that
 * can match (cost <= t) and each component is solved on its own: the same optimum, at a cost that
 * grows with the crowd around an object instead of with the whole frame. When two candidate
 * pairs cost exactly the same the problem is solved whole, so that ties are broken as the
 * stand-in breaks them (up to WHOLE_PROBLEM_LIMIT rows + columns).
 */

export interface Assignment {
  /** [row, column] pairs, by row. */
  matches: Array<[number, number]>;
  unmatchedRows: number[];
  unmatchedCols: number[];
}

/**
 * Solves the square assignment problem `cost` (n x n, row-major) exactly as SciPy's
 * linear_sum_assignment does; returns the column of each row.
 */
export function solveSquare(n: number, cost: Float64Array): Int32Array {
  const u = new Float64Array(n);
  const v = new Float64Array(n);
  const shortest = new Float64Array(n);
  const path = new Int32Array(n).fill(-1);
  const col4row = new Int32Array(n).fill(-1);
  const row4col = new Int32Array(n).fill(-1);
  const SR = new Uint8Array(n);
  const SC = new Uint8Array(n);
  const remaining = new Int32Array(n);
  for (let curRow = 0; curRow < n; curRow++) {
    // augmenting_path
    let minVal = 0;
    let numRemaining = n;
    for (let it = 0; it < n; it++) remaining[it] = n - it - 1;
    SR.fill(0);
    SC.fill(0);
    shortest.fill(Infinity);
    let sink = -1;
    let i = curRow;
    while (sink === -1) {
      let index = -1;
      let lowest = Infinity;
      SR[i] = 1;
      const base = i * n;
      const ui = u[i]!;
      for (let it = 0; it < numRemaining; it++) {
        const j = remaining[it]!;
        const r = minVal + cost[base + j]! - ui - v[j]!;
        if (r < shortest[j]!) {
          path[j] = i;
          shortest[j] = r;
        }
        const s = shortest[j]!;
        if (s < lowest || (s === lowest && row4col[j] === -1)) {
          lowest = s;
          index = it;
        }
      }
      minVal = lowest;
      if (minVal === Infinity) throw new Error('assignment: infeasible cost matrix');
      const j = remaining[index]!;
      if (row4col[j] === -1) sink = j;
      else i = row4col[j]!;
      SC[j] = 1;
      remaining[index] = remaining[--numRemaining]!;
    }
    // dual update
    u[curRow] = u[curRow]! + minVal;
    for (let r = 0; r < n; r++) if (SR[r] && r !== curRow) u[r] = u[r]! + (minVal - shortest[col4row[r]!]!);
    for (let c = 0; c < n; c++) if (SC[c]) v[c] = v[c]! - (minVal - shortest[c]!);
    // augment
    let j = sink;
    for (;;) {
      const r = path[j]!;
      row4col[j] = r;
      const t = col4row[r]!;
      col4row[r] = j;
      j = t;
      if (r === curRow) break;
    }
  }
  return col4row;
}

/**
 * Crouse's algorithm (as solveSquare) on the augmented (nr + nc) square problem without building
 * it: real x real = `real` (nr x nc, row-major), real x dummy and dummy x real = half, dummy x
 * dummy = 0. Returns the column of each real row (>= nc: unmatched).
 */
export function solveAugmented(real: Float64Array, nr: number, nc: number, half: number): Int32Array {
  const n = nr + nc;
  const u = new Float64Array(n);
  const v = new Float64Array(n);
  const shortest = new Float64Array(n);
  const path = new Int32Array(n).fill(-1);
  const col4row = new Int32Array(n).fill(-1);
  const row4col = new Int32Array(n).fill(-1);
  const SR = new Uint8Array(n);
  const SC = new Uint8Array(n);
  const remaining = new Int32Array(n);
  const visitedRows = new Int32Array(n);
  const visitedCols = new Int32Array(n);
  shortest.fill(Infinity);
  for (let curRow = 0; curRow < n; curRow++) {
    let minVal = 0;
    let numRemaining = n;
    for (let it = 0; it < n; it++) remaining[it] = n - it - 1;
    let nVR = 0;
    let nVC = 0;
    let sink = -1;
    let i = curRow;
    while (sink === -1) {
      let index = -1;
      let lowest = Infinity;
      SR[i] = 1;
      visitedRows[nVR++] = i;
      const ui = u[i]!;
      const realRow = i < nr;
      const base = i * nc;
      for (let it = 0; it < numRemaining; it++) {
        const j = remaining[it]!;
        const c = realRow ? (j < nc ? real[base + j]! : half) : j < nc ? half : 0;
        const r = minVal + c - ui - v[j]!;
        if (r < shortest[j]!) {
          path[j] = i;
          shortest[j] = r;
        }
        const s = shortest[j]!;
        if (s < lowest || (s === lowest && row4col[j] === -1)) {
          lowest = s;
          index = it;
        }
      }
      minVal = lowest;
      if (minVal === Infinity) throw new Error('assignment: infeasible cost matrix');
      const j = remaining[index]!;
      if (row4col[j] === -1) sink = j;
      else i = row4col[j]!;
      SC[j] = 1;
      visitedCols[nVC++] = j;
      remaining[index] = remaining[--numRemaining]!;
    }
    // Dual update: only visited rows and columns change (SciPy loops over all; same result).
    u[curRow] = u[curRow]! + minVal;
    for (let k = 0; k < nVR; k++) {
      const r = visitedRows[k]!;
      if (r !== curRow) u[r] = u[r]! + (minVal - shortest[col4row[r]!]!);
    }
    for (let k = 0; k < nVC; k++) {
      const c = visitedCols[k]!;
      v[c] = v[c]! - (minVal - shortest[c]!);
    }
    let j = sink;
    for (;;) {
      const r = path[j]!;
      row4col[j] = r;
      const t = col4row[r]!;
      col4row[r] = j;
      j = t;
      if (r === curRow) break;
    }
    // Reset only what this row touched (SciPy refills whole arrays).
    for (let k = 0; k < nVR; k++) SR[visitedRows[k]!] = 0;
    for (let k = 0; k < nVC; k++) SC[visitedCols[k]!] = 0;
    shortest.fill(Infinity);
  }
  return col4row.subarray(0, nr);
}

/** Above this many rows + columns a problem with ties is still split (solving it whole gets slow). */
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
 * reference's stand-in does, so that the tie is broken the same way.
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
      // What the solver does with the augmented 2 x 2 problem [[c, t/2], [t/2, 0]], worked out.
      const c = cost[rows[0]! * nCols + cols[0]!]!;
      if (c <= half || c - half < half) matches.push([rows[0]!, cols[0]!]);
      continue;
    }
    const sub = new Float64Array(rows.length * cols.length);
    for (let a = 0; a < rows.length; a++) for (let b = 0; b < cols.length; b++) sub[a * cols.length + b] = cost[rows[a]! * nCols + cols[b]!]!;
    const col4row = solveAugmented(sub, rows.length, cols.length, half);
    for (let a = 0; a < rows.length; a++) if (col4row[a]! < cols.length) matches.push([rows[a]!, cols[col4row[a]!]!]);
  }
  matches.sort((p, q) => p[0] - q[0]);
}
