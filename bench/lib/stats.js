/** Summary statistics of timing samples (milliseconds). */

/** The q-quantile (0..1) of sorted values, linearly interpolated. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/**
 * Median, p90, p99 and spread of per-run latencies. `spread` is (p90 - p10) / median: how much
 * the runs disagree, so a reader can tell a quiet machine's figure from a noisy one.
 */
export function summarize(samplesMs) {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const total = sorted.reduce((s, x) => s + x, 0);
  const median = quantile(sorted, 0.5);
  return {
    runs: sorted.length,
    meanMs: total / sorted.length,
    medianMs: median,
    p90Ms: quantile(sorted, 0.9),
    p99Ms: quantile(sorted, 0.99),
    minMs: sorted[0],
    maxMs: sorted[sorted.length - 1],
    spread: (quantile(sorted, 0.9) - quantile(sorted, 0.1)) / median,
  };
}
