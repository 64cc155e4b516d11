/**
 * The constant-velocity Kalman filter of ByteTrack (yolox/tracker/kalman_filter.py), state
 * (cx, cy, aspect, height, vcx, vcy, vaspect, vheight), in float64 like numpy.
 *
 * The reference works on full 8x8 matrices, but its motion matrix only couples each coordinate i
 * with its velocity i + 4, and every noise matrix is diagonal, so its covariance is always four
 * independent 2x2 blocks (every other entry is an exact 0). Here each block is kept as
 * [pp, pv, vp, vv] and every operation repeats numpy's arithmetic on the non-zero terms in the
 * same order (the blocks are not forced symmetric, as the reference's are not); the Cholesky solve
 * multiplies by the reciprocal of the factor's diagonal twice, as LAPACK's dpotrs does.
 */

const STD_POS = 1 / 20;
const STD_VEL = 1 / 160;

/** mean: 8 values; cov: 16 values, block d at [4d .. 4d+3] = P[d][d], P[d][d+4], P[d+4][d], P[d+4][d+4]. */
export interface KalmanState {
  mean: Float64Array;
  cov: Float64Array;
}

/** A new state from a measurement (cx, cy, aspect, h): zero velocities, the reference's initial spread. */
export function kalmanInitiate(cx: number, cy: number, a: number, h: number): KalmanState {
  const mean = new Float64Array(8);
  mean[0] = cx;
  mean[1] = cy;
  mean[2] = a;
  mean[3] = h;
  const p = 2 * STD_POS * h;
  const v = 10 * STD_VEL * h;
  const stdPos = [p, p, 1e-2, p];
  const stdVel = [v, v, 1e-5, v];
  const cov = new Float64Array(16);
  for (let d = 0; d < 4; d++) {
    cov[4 * d] = stdPos[d]! * stdPos[d]!;
    cov[4 * d + 3] = stdVel[d]! * stdVel[d]!;
  }
  return { mean, cov };
}

/** One step of the motion model in place (the reference's multi_predict for one track). */
export function kalmanPredict(s: KalmanState): void {
  const { mean, cov } = s;
  const h = mean[3]!;
  const p = STD_POS * h;
  const v = STD_VEL * h;
  for (let d = 0; d < 4; d++) {
    const qp = d === 2 ? 1e-2 : p;
    const qv = d === 2 ? 1e-5 : v;
    mean[d] = mean[d]! + mean[d + 4]!;
    const o = 4 * d;
    const pp = cov[o]!, pv = cov[o + 1]!, vp = cov[o + 2]!, vv = cov[o + 3]!;
    cov[o] = pp + vp + (pv + vv) + qp * qp;
    cov[o + 1] = pv + vv;
    cov[o + 2] = vp + vv;
    cov[o + 3] = vv + qv * qv;
  }
}

/** The measurement update in place with (cx, cy, aspect, h). */
export function kalmanUpdate(s: KalmanState, z0: number, z1: number, z2: number, z3: number): void {
  const { mean, cov } = s;
  const h = mean[3]!;
  const p = STD_POS * h;
  const z = [z0, z1, z2, z3];
  for (let d = 0; d < 4; d++) {
    const r = d === 2 ? 1e-1 : p;
    const o = 4 * d;
    const pp = cov[o]!, pv = cov[o + 1]!, vp = cov[o + 2]!, vv = cov[o + 3]!;
    const S = pp + r * r;
    const inv = 1 / Math.sqrt(S);
    const kp = pp * inv * inv;
    const kv = vp * inv * inv;
    const innovation = z[d]! - mean[d]!;
    mean[d] = mean[d]! + innovation * kp;
    mean[d + 4] = mean[d + 4]! + innovation * kv;
    cov[o] = pp - kp * (S * kp);
    cov[o + 1] = pv - kp * (S * kv);
    cov[o + 2] = vp - kv * (S * kp);
    cov[o + 3] = vv - kv * (S * kv);
  }
}
