/**
 * ByteTrack for one stream of detections, step for step as the reference implementation
 * (ifzhang/ByteTrack, yolox/tracker/byte_tracker.py with matching.py and basetrack.py) does it:
 * the same lists of tracked, lost and unconfirmed tracks, the same two association stages, the
 * same order of every list, and the same float64 arithmetic. ByteTracker (tracker.ts) runs one of
 * these per class, or one for all classes.
 */
import { linearAssignment } from './assignment.js';
import { iouCostSparse } from './iou.js';
import { kalmanInitiate, kalmanPredict, kalmanUpdate, type KalmanState } from './kalman.js';

export const enum TrackState {
  New = 0,
  Tracked = 1,
  Lost = 2,
  Removed = 3,
}

/** The parameters of the reference (its argparse defaults in tools/demo_track.py). */
export interface ByteTrackParams {
  /** High-score detections: score > trackThresh (0.5); new tracks need score >= trackThresh + 0.1. */
  trackThresh: number;
  /** Low-score detections, used only to keep tracks going: lowThresh < score < trackThresh (0.1). */
  lowThresh: number;
  /** First association's cost limit (0.8). */
  matchThresh: number;
  /** Frames a lost track is kept at 30 FPS (30); scaled by frameRate / 30. */
  trackBuffer: number;
  frameRate: number;
  /** Fuse IoU with detection scores (the reference does unless --mot20). */
  fuseScore: boolean;
}

/** Detection as the core sees it: box, score, and the index in the caller's input. */
export interface CoreDetection {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  index: number;
}

/** The reference's global id counter (BaseTrack._count), one per ByteTracker. */
export interface IdCounter {
  count: number;
}

export class STrack {
  trackId = 0;
  state: TrackState = TrackState.New;
  isActivated = false;
  frameId = 0;
  startFrame = 0;
  trackletLen = 0;
  kf: KalmanState | null = null;
  /**
   * The reference's `self.removed_stracks` holds this track (it was marked removed in an earlier
   * frame): once there, it leaves the lost list at the end of any frame it is in it, for good.
   */
  inRemovedList = false;
  /** Index of the detection this track took in the current frame (-1 when none). */
  detIndex: number;
  score: number;
  /** The detection box as tlwh, as the reference stores it (x1, y1, x2 - x1, y2 - y1). */
  private readonly det: [number, number, number, number];

  constructor(d: CoreDetection) {
    this.det = [d.x1, d.y1, d.x2 - d.x1, d.y2 - d.y1];
    this.score = d.score;
    this.detIndex = d.index;
  }

  /** (x, y, w, h): the filter's estimate, or the detection before activation. */
  tlwh(): [number, number, number, number] {
    const kf = this.kf;
    if (!kf) return [this.det[0], this.det[1], this.det[2], this.det[3]];
    const m = kf.mean;
    const h = m[3]!;
    const w = m[2]! * h;
    return [m[0]! - w / 2, m[1]! - h / 2, w, h];
  }

  /** Writes (x1, y1, x2, y2) at out[4 * at]. */
  tlbrInto(out: Float64Array, at: number): void {
    let x: number, y: number, w: number, h: number;
    const kf = this.kf;
    if (kf) {
      const m = kf.mean;
      h = m[3]!;
      w = m[2]! * h;
      x = m[0]! - w / 2;
      y = m[1]! - h / 2;
    } else {
      [x, y, w, h] = this.det;
    }
    out[4 * at] = x;
    out[4 * at + 1] = y;
    out[4 * at + 2] = x + w;
    out[4 * at + 3] = y + h;
  }

  get endFrame(): number {
    return this.frameId;
  }

  activate(frameId: number, ids: IdCounter): void {
    this.trackId = ++ids.count;
    const [x, y, w, h] = this.det;
    this.kf = kalmanInitiate(x + w / 2, y + h / 2, w / h, h);
    this.trackletLen = 0;
    this.state = TrackState.Tracked;
    if (frameId === 1) this.isActivated = true;
    this.frameId = frameId;
    this.startFrame = frameId;
  }

  private measure(d: STrack): void {
    const [x, y, w, h] = d.tlwh();
    kalmanUpdate(this.kf!, x + w / 2, y + h / 2, w / h, h);
    this.detIndex = d.detIndex;
  }

  reActivate(d: STrack, frameId: number): void {
    this.measure(d);
    this.trackletLen = 0;
    this.state = TrackState.Tracked;
    this.isActivated = true;
    this.frameId = frameId;
    this.score = d.score;
  }

  update(d: STrack, frameId: number): void {
    this.frameId = frameId;
    this.trackletLen++;
    this.measure(d);
    this.state = TrackState.Tracked;
    this.isActivated = true;
    this.score = d.score;
  }
}

/** Scratch buffers reused between frames (the cost matrix of 1,000 x 1,000 boxes is 8 MB). */
class Scratch {
  private a = new Float64Array(0);
  private b = new Float64Array(0);
  private s = new Float64Array(0);
  private c = new Float64Array(0);
  private order = new Int32Array(0);
  /** Overlapping pairs of the last costs() call (row, column, ...) and their count. */
  pairs = new Int32Array(0);
  pairCount = 0;

  costs(tracks: STrack[], dets: STrack[], fuse: boolean): Float64Array {
    const na = tracks.length;
    const nb = dets.length;
    if (this.a.length < 4 * na) this.a = new Float64Array(4 * na * 2);
    if (this.b.length < 4 * nb) this.b = new Float64Array(4 * nb * 2);
    if (this.s.length < nb) this.s = new Float64Array(nb * 2);
    if (this.order.length < nb) this.order = new Int32Array(nb * 2);
    if (this.c.length < na * nb) this.c = new Float64Array(na * nb * 2);
    for (let i = 0; i < na; i++) tracks[i]!.tlbrInto(this.a, i);
    for (let j = 0; j < nb; j++) {
      dets[j]!.tlbrInto(this.b, j);
      this.s[j] = dets[j]!.score;
    }
    this.pairCount = iouCostSparse(this.a, na, this.b, nb, this.c, fuse ? this.s : undefined, this.order, this);
    return this.c;
  }

  /** Thresholded assignment on the last costs(), using the overlapping pairs found. */
  assign(na: number, nb: number, thresh: number) {
    return linearAssignment(this.c, na, nb, thresh, { pairs: this.pairs, count: this.pairCount });
  }
}

/** The reference's match handling: a tracked track takes the detection, a lost one is re-activated. */
function applyMatches(matches: ReadonlyArray<readonly [number, number]>, tracks: readonly STrack[], detections: readonly STrack[], frameId: number, activated: STrack[], refind: STrack[]): void {
  for (const [it, id] of matches) {
    const t = tracks[it]!;
    const d = detections[id]!;
    if (t.state === TrackState.Tracked) {
      t.update(d, frameId);
      activated.push(t);
    } else {
      t.reActivate(d, frameId);
      refind.push(t);
    }
  }
}

function joint(a: STrack[], b: STrack[]): STrack[] {
  const seen = new Set<number>();
  const out: STrack[] = [];
  for (const t of a) {
    seen.add(t.trackId);
    out.push(t);
  }
  for (const t of b) {
    if (!seen.has(t.trackId)) {
      seen.add(t.trackId);
      out.push(t);
    }
  }
  return out;
}

function sub(a: STrack[], b: STrack[]): STrack[] {
  // The reference keys a dict by track id: a later track with the same id replaces an earlier one
  // in the earlier one's place. Ids are unique within these lists, so this is a plain filter.
  const drop = new Set(b.map((t) => t.trackId));
  return a.filter((t) => !drop.has(t.trackId));
}

export class ByteTrackCore {
  tracked: STrack[] = [];
  lost: STrack[] = [];
  frameId: number;
  readonly detThresh: number;
  readonly maxTimeLost: number;
  private readonly scratch = new Scratch();

  /** `startFrame`: frames already seen by the caller before this core was created (per-class cores start late). */
  constructor(
    readonly params: ByteTrackParams,
    private readonly ids: IdCounter,
    startFrame = 0,
  ) {
    this.frameId = startFrame;
    this.detThresh = params.trackThresh + 0.1;
    this.maxTimeLost = Math.trunc((params.frameRate / 30.0) * params.trackBuffer);
  }

  /** True when the core holds no track at all (it can be dropped). */
  get empty(): boolean {
    return this.tracked.length === 0 && this.lost.length === 0;
  }

  /** One frame; returns the activated tracked tracks, in the reference's order. */
  update(input: CoreDetection[]): STrack[] {
    const p = this.params;
    const frameId = ++this.frameId;
    const activated: STrack[] = [];
    const refind: STrack[] = [];
    const lostNow: STrack[] = [];
    const removedNow: STrack[] = [];

    let detections: STrack[] = [];
    const second: STrack[] = [];
    for (const d of input) {
      if (d.score > p.trackThresh) detections.push(new STrack(d));
      else if (d.score > p.lowThresh && d.score < p.trackThresh) second.push(new STrack(d));
    }

    const unconfirmed: STrack[] = [];
    const trackedActive: STrack[] = [];
    for (const t of this.tracked) {
      t.detIndex = -1;
      (t.isActivated ? trackedActive : unconfirmed).push(t);
    }
    for (const t of this.lost) t.detIndex = -1;

    // Step 2: first association, high-score detections against tracked and lost tracks.
    const pool = joint(trackedActive, this.lost);
    for (const t of pool) {
      const kf = t.kf!;
      if (t.state !== TrackState.Tracked) kf.mean[7] = 0;
      kalmanPredict(kf);
    }
    this.scratch.costs(pool, detections, p.fuseScore);
    const first = this.scratch.assign(pool.length, detections.length, p.matchThresh);
    applyMatches(first.matches, pool, detections, frameId, activated, refind);

    // Step 3: second association, low-score detections against the tracks still unmatched.
    const rTracked = first.unmatchedRows.map((i) => pool[i]!).filter((t) => t.state === TrackState.Tracked);
    this.scratch.costs(rTracked, second, false);
    const secondMatch = this.scratch.assign(rTracked.length, second.length, 0.5);
    applyMatches(secondMatch.matches, rTracked, second, frameId, activated, refind);
    for (const it of secondMatch.unmatchedRows) {
      const t = rTracked[it]!;
      if (t.state !== TrackState.Lost) {
        t.state = TrackState.Lost;
        lostNow.push(t);
      }
    }

    // Unconfirmed tracks (usually seen in one frame only) against the remaining high-score detections.
    detections = first.unmatchedCols.map((i) => detections[i]!);
    this.scratch.costs(unconfirmed, detections, p.fuseScore);
    const third = this.scratch.assign(unconfirmed.length, detections.length, 0.7);
    for (const [it, id] of third.matches) {
      unconfirmed[it]!.update(detections[id]!, frameId);
      activated.push(unconfirmed[it]!);
    }
    for (const it of third.unmatchedRows) {
      const t = unconfirmed[it]!;
      t.state = TrackState.Removed;
      removedNow.push(t);
    }

    // Step 4: new tracks.
    for (const inew of third.unmatchedCols) {
      const t = detections[inew]!;
      if (t.score < this.detThresh) continue;
      t.activate(frameId, this.ids);
      activated.push(t);
    }

    // Step 5: lost tracks past the buffer are removed.
    for (const t of this.lost) {
      if (frameId - t.endFrame > this.maxTimeLost) {
        t.state = TrackState.Removed;
        removedNow.push(t);
      }
    }

    let tracked = this.tracked.filter((t) => t.state === TrackState.Tracked);
    tracked = joint(tracked, activated);
    tracked = joint(tracked, refind);
    const lost = sub(this.lost, tracked);
    lost.push(...lostNow);
    // As the reference: the lost tracks go through the removed list as it was before this frame
    // (sub_stracks(lost, self.removed_stracks), then self.removed_stracks.extend(...)). So a track
    // removed in this frame stays lost, in state Removed, for one more frame, and can still be
    // found again in the next one's first association; and a track found again that way is in the
    // removed list already, so it is dropped at once the next time it is lost.
    const kept = lost.filter((t) => !t.inRemovedList);
    for (const t of removedNow) t.inRemovedList = true;
    [this.tracked, this.lost] = this.removeDuplicates(tracked, kept);
    return this.tracked.filter((t) => t.isActivated);
  }

  /** remove_duplicate_stracks: a tracked and a lost track on the same spot keep the older one. */
  private removeDuplicates(a: STrack[], b: STrack[]): [STrack[], STrack[]] {
    if (a.length === 0 || b.length === 0) return [a, b];
    const cost = this.scratch.costs(a, b, false);
    const dropA = new Set<number>();
    const dropB = new Set<number>();
    // Pairs closer than 0.15 overlap, so only the overlapping pairs need a look, in row-major order as np.where gives them.
    const { pairs, pairCount } = this.scratch;
    const found: number[] = [];
    for (let k = 0; k < pairCount; k++) if (cost[pairs[2 * k]! * b.length + pairs[2 * k + 1]!]! < 0.15) found.push(pairs[2 * k]! * b.length + pairs[2 * k + 1]!);
    found.sort((x, y) => x - y);
    for (const at of found) {
      const p = Math.floor(at / b.length);
      const q = at % b.length;
      const timeP = a[p]!.frameId - a[p]!.startFrame;
      const timeQ = b[q]!.frameId - b[q]!.startFrame;
      if (timeP > timeQ) dropB.add(q);
      else dropA.add(p);
    }
    return [a.filter((_, i) => !dropA.has(i)), b.filter((_, i) => !dropB.has(i))];
  }
}
