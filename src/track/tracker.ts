/**
 * ByteTracker: multi-object tracking of any detector's boxes, frame by frame.
 *
 * @example
 * const tracker = new ByteTracker({ frameRate: 30 });
 * for (const frame of frames) {
 *   const tracks = tracker.update(frame.detections); // [{ trackId, box, score, classId, label, detection }]
 * }
 */
import { DeimError } from '../errors.js';
import { ByteTrackCore, type ByteTrackParams, type CoreDetection, type IdCounter } from './byte-track.js';
import { checkFrameDetections, resolveTrackerOptions, type TRACKER_DEFAULTS, type TrackerOptions } from './check.js';

export { resolveTrackerOptions, TRACKER_DEFAULTS, type TrackerOptions } from './check.js';

/** What the tracker needs of a detection; the package's Detection fits. */
export interface TrackerInput {
  box: readonly [number, number, number, number] | readonly number[];
  score: number;
  classId?: number;
  label?: string;
  categoryId?: number;
}

export interface Track {
  /** Stable id, unique within this tracker (1, 2, ...). */
  trackId: number;
  /** The filtered box (x1, y1, x2, y2): the Kalman estimate after this frame's detection. */
  box: [number, number, number, number];
  /** Score of the detection this track took in this frame. */
  score: number;
  classId: number;
  label?: string;
  categoryId?: number;
  /** Index, in this frame's input, of the detection this track took. */
  detection: number;
  /** The frame (1-based count of update calls) this track started in. */
  startFrame: number;
}

/** Checks one detection; `where` names it in the message ("frame 12, detection 3"). */
export function checkDetection(d: TrackerInput, where: string): void {
  const b = d?.box;
  if (!b || b.length !== 4) throw new DeimError('ERR_INVALID_ARGUMENT', `${where}: box must be [x1, y1, x2, y2], got ${JSON.stringify(b)}`);
  for (const v of b) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new DeimError('ERR_INVALID_ARGUMENT', `${where}: box ${JSON.stringify(b)} has a value that is not a finite number`);
  }
  if (b[2]! < b[0]! || b[3]! < b[1]!) throw new DeimError('ERR_INVALID_ARGUMENT', `${where}: box ${JSON.stringify(b)} has a negative width or height (x2 < x1 or y2 < y1)`);
  if (typeof d.score !== 'number' || !Number.isFinite(d.score) || d.score < 0 || d.score > 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `${where}: score must be a number from 0 to 1, got ${JSON.stringify(d.score)}`);
  }
  if (d.classId !== undefined && (!Number.isInteger(d.classId) || d.classId < 0)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `${where}: classId must be an integer >= 0, got ${JSON.stringify(d.classId)}`);
  }
}

export class ByteTracker {
  readonly options: typeof TRACKER_DEFAULTS;
  private readonly params: ByteTrackParams;
  private readonly ids: IdCounter = { count: 0 };
  /** One core per class (key -1 for class-agnostic tracking), created when the class first shows up. */
  private readonly cores = new Map<number, ByteTrackCore>();
  private frames = 0;

  constructor(options: TrackerOptions = {}) {
    this.options = resolveTrackerOptions(options);
    const o = this.options;
    this.params = { trackThresh: o.trackThresh, lowThresh: o.lowThresh, matchThresh: o.matchThresh, trackBuffer: o.trackBuffer, frameRate: o.frameRate, fuseScore: o.fuseScore };
  }

  /** Frames seen so far. */
  get frameCount(): number {
    return this.frames;
  }

  /**
   * Takes one frame's detections (every detection above lowThresh matters: do not pre-filter at a
   * display threshold) and returns the tracks confirmed in this frame, ordered by class then as the
   * reference orders them. Throws ERR_INVALID_ARGUMENT for a malformed detection.
   */
  update(detections: readonly TrackerInput[]): Track[] {
    if (!Array.isArray(detections)) throw new DeimError('ERR_INVALID_ARGUMENT', `ByteTracker.update expects an array of detections, got ${typeof detections}`);
    checkFrameDetections(detections.length, `ByteTracker.update, frame ${this.frames + 1}`);
    detections.forEach((d, i) => checkDetection(d, `frame ${this.frames + 1}, detection ${i}`));
    this.frames++;
    const byClass = new Map<number, CoreDetection[]>();
    detections.forEach((d, index) => {
      const key = this.options.agnostic ? -1 : (d.classId ?? 0);
      let list = byClass.get(key);
      if (!list) byClass.set(key, (list = []));
      list.push({ x1: d.box[0]!, y1: d.box[1]!, x2: d.box[2]!, y2: d.box[3]!, score: d.score, index });
    });
    for (const key of byClass.keys()) {
      if (!this.cores.has(key)) this.cores.set(key, new ByteTrackCore(this.params, this.ids, this.frames - 1));
    }
    const keys = [...this.cores.keys()].sort((a, b) => a - b);
    const out: Track[] = [];
    for (const key of keys) {
      const core = this.cores.get(key)!;
      const tracks = core.update(byClass.get(key) ?? []);
      for (const t of tracks) {
        const d = detections[t.detIndex]!;
        const info = { classId: d.classId ?? 0, ...(d.label !== undefined ? { label: d.label } : {}), ...(d.categoryId !== undefined ? { categoryId: d.categoryId } : {}) };
        const [x, y, w, h] = t.tlwh();
        if (w * h <= this.options.minBoxArea) continue;
        out.push({ trackId: t.trackId, box: [x, y, x + w, y + h], score: t.score, ...info, detection: t.detIndex, startFrame: t.startFrame });
      }
      // A class with no tracks left costs nothing to drop: a new core starts at the current frame.
      if (core.empty && !byClass.has(key)) this.cores.delete(key);
    }
    return out;
  }

  /** Ids of the tracks the tracker still holds (tracked, lost or unconfirmed): any other id never comes back. */
  liveIds(): Set<number> {
    const ids = new Set<number>();
    for (const core of this.cores.values()) for (const t of [...core.tracked, ...core.lost]) ids.add(t.trackId);
    return ids;
  }

  /** Forgets every track; ids start again at 1. */
  reset(): void {
    this.cores.clear();
    this.ids.count = 0;
    this.frames = 0;
  }
}
