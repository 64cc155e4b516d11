/**
 * A tracking session over one video or stream: the tracker, counting lines, zones and trails.
 * Frames go in in order with all their detections (score > 0.1 matters to the tracker); out come
 * the detections to show (score >= threshold) with their `trackId`, the tracks, and the counts.
 *
 * @example
 * const session = new TrackSession({ frameRate: 25, lines: ['0,400,1280,400:gate'], zones: ['100,100,500,100,500,400,100,400:dock'] });
 * for (const frame of frames) {
 *   const { detections, tracks, counts } = session.update(frame.index, frame.detections);
 * }
 * console.log(formatTrackSummary(session.summary()));
 */
import { DeimError } from '../errors.js';
import type { Detection } from '../postprocess/types.js';
import { checkTrackSessionOptions, type TrackSessionOptions } from './check.js';
import { insidePolygon, segmentsIntersect, sideOf, type CountLine, type Zone } from './geometry.js';
import { ByteTracker, type Track } from './tracker.js';

export type { TrackSessionOptions } from './check.js';

export type TrackedDetection = Detection & { trackId?: number };

export interface LineCrossing {
  line: string;
  trackId: number;
  label: string;
  /** "in": from the left-hand to the right-hand side looking from the line's first point to its second (image coordinates, y down); "out": the other way. */
  direction: 'in' | 'out';
}

export interface FrameCounts {
  /** Crossings in this frame. */
  crossings: LineCrossing[];
  /** Totals so far per line. */
  lines: Record<string, { in: number; out: number }>;
  /** Tracks inside each zone in this frame. */
  zones: Record<string, { count: number; trackIds: number[] }>;
}

export interface TrackedFrame {
  frame: number;
  detections: TrackedDetection[];
  tracks: Track[];
  counts?: FrameCounts;
}

export interface LineSummary {
  name: string;
  points: number[];
  in: Record<string, number>;
  out: Record<string, number>;
  totalIn: number;
  totalOut: number;
}

export interface DwellEntry {
  trackId: number;
  label: string;
  frames: number;
  seconds: number;
  firstFrame: number;
  lastFrame: number;
}

export interface ZoneSummary {
  name: string;
  points: number[];
  maxOccupancy: number;
  /** Distinct tracks that were inside, per class. */
  visitors: Record<string, number>;
  dwell: DwellEntry[];
}

export interface TrackSummary {
  frames: number;
  frameRate: number;
  tracks: number;
  /** Distinct tracks per class. */
  tracksByClass: Record<string, number>;
  lines: LineSummary[];
  zones: ZoneSummary[];
}

/** Frames between two prunings of the per-track state of gone tracks. */
const PRUNE_EVERY = 256;

const labelOf = (t: { label?: string; classId: number }) => t.label ?? `class ${t.classId}`;

export class TrackSession {
  readonly tracker: ByteTracker;
  readonly lines: CountLine[];
  readonly zones: Zone[];
  readonly trailLength: number;
  readonly threshold: number;
  /** Recent centre points of each track (when trails > 0), oldest first. */
  readonly trails = new Map<number, { points: number[]; lastFrame: number }>();
  private frames = 0;
  private lastFrame = -Infinity;
  /** Live tracks seen so far (pruned of tracks the tracker has dropped), and the totals of all. */
  private readonly seen = new Map<number, string>();
  private seenTotal = 0;
  private readonly seenByClass: Record<string, number> = {};
  /** Per zone: distinct tracks that were inside, per class (exact, while dwell entries of gone tracks may be dropped). */
  private readonly visitors: Array<Record<string, number>>;
  private readonly maxDwellEntries: number;
  private readonly lineState: Array<Map<number, { side: number; x: number; y: number }>>;
  private readonly lineCounts: Array<{ in: Record<string, number>; out: Record<string, number>; totalIn: number; totalOut: number }>;
  private readonly dwell: Array<Map<number, DwellEntry>>;
  /**
   * Per zone and track: seconds the frames' real times (update's `time`) add to frames / frameRate
   * (zero at a constant rate, so a constant-rate video's dwell is exactly frames / frameRate).
   */
  private readonly dwellExtra: Array<Map<number, number>>;
  private lastTime: number | undefined;
  /** This frame's real time step beyond 1 / frameRate (0 without times). */
  private stepExtra = 0;
  private readonly maxOccupancy: number[];

  constructor(options: TrackSessionOptions = {}) {
    const checked = checkTrackSessionOptions(options);
    this.tracker = new ByteTracker(checked.tracker);
    this.lines = checked.lines;
    this.zones = checked.zones;
    this.trailLength = checked.trails;
    this.threshold = checked.threshold;
    this.lineState = this.lines.map(() => new Map());
    this.lineCounts = this.lines.map(() => ({ in: {}, out: {}, totalIn: 0, totalOut: 0 }));
    this.dwell = this.zones.map(() => new Map());
    this.dwellExtra = this.zones.map(() => new Map());
    this.maxOccupancy = this.zones.map(() => 0);
    this.visitors = this.zones.map(() => ({}));
    this.maxDwellEntries = checked.maxDwellEntries;
  }

  get counting(): boolean {
    return this.lines.length > 0 || this.zones.length > 0;
  }

  /**
   * One frame. `frame` is the source's frame index: it must increase from call to call (gaps, as
   * from a live source dropping frames, are fine). Throws ERR_INVALID_ARGUMENT otherwise.
   * `time` (seconds, the frame's pts) times zone dwell by the real time since the frame before
   * (a variable-rate video); without it each frame counts 1 / frameRate. ByteTrack itself stays
   * frame-based, as the reference: its lost-track buffer is in frames (track_buffer x frameRate / 30).
   */
  update(frame: number, detections: readonly Detection[], time?: number): TrackedFrame {
    if (!Number.isInteger(frame) || frame <= this.lastFrame) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `frames must come in increasing order: frame ${frame} after frame ${this.lastFrame}`, { input: String(frame) });
    }
    const nominal = 1 / this.tracker.options.frameRate;
    const step = time !== undefined && this.lastTime !== undefined ? time - this.lastTime : nominal;
    // Steps within a microsecond of the nominal one are the nominal one (rounding of the pts).
    this.stepExtra = Number.isFinite(step) && Math.abs(step - nominal) > 1e-6 ? step - nominal : 0;
    if (time !== undefined) this.lastTime = time;
    this.lastFrame = frame;
    this.frames++;
    const tracks = this.tracker.update(detections);
    const idOf = new Map<number, number>();
    for (const t of tracks) {
      idOf.set(t.detection, t.trackId);
      if (!this.seen.has(t.trackId)) {
        const label = labelOf(t);
        this.seen.set(t.trackId, label);
        this.seenTotal++;
        this.seenByClass[label] = (this.seenByClass[label] ?? 0) + 1;
      }
    }
    const shown: TrackedDetection[] = [];
    detections.forEach((d, i) => {
      if (!(d.score >= this.threshold)) return;
      const id = idOf.get(i);
      shown.push(id === undefined ? d : { ...d, trackId: id });
    });
    if (this.trailLength > 0) this.updateTrails(frame, tracks);
    const result: TrackedFrame = { frame, detections: shown, tracks };
    if (this.counting) result.counts = this.count(frame, tracks);
    if (this.frames % PRUNE_EVERY === 0) this.prune();
    return result;
  }

  /**
   * Forgets the per-track state of tracks the tracker has dropped (their ids never come back):
   * a session that runs for days holds what its live tracks need, not one entry per track ever
   * seen. Totals are kept as counters; no count or crossing changes.
   */
  private prune(): void {
    const live = this.tracker.liveIds();
    for (const id of this.seen.keys()) if (!live.has(id)) this.seen.delete(id);
    for (const state of this.lineState) for (const id of state.keys()) if (!live.has(id)) state.delete(id);
    this.dwell.forEach((dwell, k) => {
      let gone = 0;
      for (const id of dwell.keys()) if (!live.has(id)) gone++;
      // The oldest visits of gone tracks go first (a Map keeps the order the tracks came in).
      for (const id of dwell.keys()) {
        if (gone <= this.maxDwellEntries) break;
        if (live.has(id)) continue;
        dwell.delete(id);
        this.dwellExtra[k]!.delete(id);
        gone--;
      }
    });
  }

  /** Per-track entries the session holds (tests: bounded by the live tracks and maxDwellEntries). */
  retained(): { tracks: number; lineStates: number; dwellEntries: number } {
    const sum = (maps: Array<Map<number, unknown>>) => maps.reduce((a, m) => a + m.size, 0);
    return { tracks: this.seen.size, lineStates: sum(this.lineState), dwellEntries: sum(this.dwell) };
  }

  private updateTrails(frame: number, tracks: Track[]): void {
    for (const t of tracks) {
      let trail = this.trails.get(t.trackId);
      if (!trail) this.trails.set(t.trackId, (trail = { points: [], lastFrame: frame }));
      trail.points.push((t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2);
      if (trail.points.length > 2 * this.trailLength) trail.points.splice(0, trail.points.length - 2 * this.trailLength);
      trail.lastFrame = frame;
    }
    for (const [id, trail] of this.trails) if (frame - trail.lastFrame >= this.trailLength) this.trails.delete(id);
  }

  private count(frame: number, tracks: Track[]): FrameCounts {
    const crossings: LineCrossing[] = [];
    const lines: FrameCounts['lines'] = {};
    this.lines.forEach((line, k) => {
      const state = this.lineState[k]!;
      const totals = this.lineCounts[k]!;
      const [x1, y1, x2, y2] = line.points;
      for (const t of tracks) {
        const x = (t.box[0] + t.box[2]) / 2;
        const y = (t.box[1] + t.box[3]) / 2;
        const side = sideOf(line, x, y);
        if (side === 0) continue; // on the line: wait until it leaves on one side
        const last = state.get(t.trackId);
        state.set(t.trackId, { side, x, y });
        if (!last || last.side === side) continue;
        // The side changed: a crossing if the move went through the segment, not around its ends.
        if (!segmentsIntersect(last.x, last.y, x, y, x1, y1, x2, y2)) continue;
        const direction = side > 0 ? 'in' : 'out';
        const label = labelOf(t);
        crossings.push({ line: line.name, trackId: t.trackId, label, direction });
        totals[direction][label] = (totals[direction][label] ?? 0) + 1;
        if (direction === 'in') totals.totalIn++;
        else totals.totalOut++;
      }
      lines[line.name] = { in: totals.totalIn, out: totals.totalOut };
    });
    const zones: FrameCounts['zones'] = {};
    this.zones.forEach((zone, k) => {
      const inside: number[] = [];
      for (const t of tracks) {
        if (!insidePolygon(zone.points, (t.box[0] + t.box[2]) / 2, (t.box[1] + t.box[3]) / 2)) continue;
        inside.push(t.trackId);
        const dwell = this.dwell[k]!;
        const e = dwell.get(t.trackId);
        if (this.stepExtra !== 0) this.dwellExtra[k]!.set(t.trackId, (this.dwellExtra[k]!.get(t.trackId) ?? 0) + this.stepExtra);
        if (e) {
          e.frames++;
          e.lastFrame = frame;
        } else {
          const label = labelOf(t);
          dwell.set(t.trackId, { trackId: t.trackId, label, frames: 1, seconds: 0, firstFrame: frame, lastFrame: frame });
          this.visitors[k]![label] = (this.visitors[k]![label] ?? 0) + 1;
        }
      }
      this.maxOccupancy[k] = Math.max(this.maxOccupancy[k]!, inside.length);
      zones[zone.name] = { count: inside.length, trackIds: inside };
    });
    return { crossings, lines, zones };
  }

  /** Totals so far: tracks, crossings per line, class and direction, dwell per zone and track. */
  summary(): TrackSummary {
    const fps = this.tracker.options.frameRate;
    return {
      frames: this.frames,
      frameRate: fps,
      tracks: this.seenTotal,
      tracksByClass: { ...this.seenByClass },
      lines: this.lines.map((l, k) => ({ name: l.name, points: [...l.points], ...structuredClone(this.lineCounts[k]!) })),
      zones: this.zones.map((z, k) => {
        const dwell = [...this.dwell[k]!.values()].map((e) => ({ ...e, seconds: Math.round((e.frames / fps + (this.dwellExtra[k]!.get(e.trackId) ?? 0)) * 1000) / 1000 }));
        return { name: z.name, points: [...z.points], maxOccupancy: this.maxOccupancy[k]!, visitors: { ...this.visitors[k]! }, dwell };
      }),
    };
  }
}

/** The summary as a plain-text table for the terminal. */
export function formatTrackSummary(s: TrackSummary): string {
  const out: string[] = [];
  const classes = Object.entries(s.tracksByClass).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`);
  out.push(`tracking: ${s.frames} frames, ${s.tracks} tracks${classes.length ? ` (${classes.join(', ')})` : ''}`);
  const pad = (t: string, n: number) => (t.length >= n ? t : t + ' '.repeat(n - t.length));
  if (s.lines.length) {
    out.push(`${pad('line', 16)}${pad('class', 16)}${pad('in', 8)}out`);
    for (const l of s.lines) {
      const labels = [...new Set([...Object.keys(l.in), ...Object.keys(l.out)])].sort();
      for (const label of labels) out.push(`${pad(l.name, 16)}${pad(label, 16)}${pad(String(l.in[label] ?? 0), 8)}${l.out[label] ?? 0}`);
      out.push(`${pad(l.name, 16)}${pad('all', 16)}${pad(String(l.totalIn), 8)}${l.totalOut}`);
    }
  }
  if (s.zones.length) {
    out.push(`${pad('zone', 16)}${pad('class', 16)}${pad('tracks', 8)}${pad('max', 6)}mean dwell`);
    for (const z of s.zones) {
      const byClass = new Map<string, DwellEntry[]>();
      for (const e of z.dwell) byClass.set(e.label, [...(byClass.get(e.label) ?? []), e]);
      for (const [label, entries] of [...byClass].sort()) {
        const mean = entries.reduce((a, e) => a + e.frames, 0) / entries.length;
        // Frames timed by their real times (a variable-rate video) give seconds of their own.
        const timed = entries.some((e) => e.seconds !== Math.round((e.frames / s.frameRate) * 1000) / 1000);
        const meanSeconds = timed ? entries.reduce((a, e) => a + e.seconds, 0) / entries.length : mean / s.frameRate;
        out.push(`${pad(z.name, 16)}${pad(label, 16)}${pad(String(entries.length), 8)}${pad('', 6)}${meanSeconds.toFixed(2)} s (${mean.toFixed(1)} frames)`);
      }
      out.push(`${pad(z.name, 16)}${pad('all', 16)}${pad(String(z.dwell.length), 8)}${pad(String(z.maxOccupancy), 6)}`);
    }
  }
  return out.join('\n');
}
