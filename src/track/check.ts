/**
 * Tracking options checked and completed without loading the tracker: a video run checks its
 * `track` options when it is set up (bad lines or zones fail before any decoding), and an image run
 * never loads the tracking code at all.
 */
import { DeimError } from '../errors.js';
import { checkLine, checkZone, GEOMETRY_LIMITS, parseLine, parseZone, type CountLine, type Zone } from './geometry.js';

/**
 * The most detections the tracker takes in one frame (ERR_TOO_MANY_DETECTIONS beyond). Association
 * builds IoU and cost matrices of (tracked + lost tracks) x detections, and lost tracks stay for
 * the track buffer (30 frames), so the pool can reach about 15 frames' worth: measured with
 * frames of all-new boxes that last two frames each, 5,000 a frame took 2.7 GB and 13.7 s by
 * frame 16 (and grows to frame 30); 1,000 a frame peaks at 353 MB, 3.5 s for 80 frames. DEIMv2
 * gives at most 300 a frame.
 */
export const MAX_FRAME_DETECTIONS = 1_000;

/** Throws ERR_TOO_MANY_DETECTIONS when a frame has more detections than MAX_FRAME_DETECTIONS. */
export function checkFrameDetections(count: number, where: string, input?: string): void {
  if (count > MAX_FRAME_DETECTIONS) {
    throw new DeimError('ERR_TOO_MANY_DETECTIONS', `${where}: ${count} detections in one frame, over the tracker's limit of ${MAX_FRAME_DETECTIONS} a frame (raise the score threshold or keep fewer detections)`, input === undefined ? {} : { input });
  }
}

export interface TrackerOptions {
  /** Detections above this score start and lead tracks (default 0.5; new tracks need score >= it + 0.1). */
  trackThresh?: number;
  /** Detections between this and trackThresh only keep existing tracks going (default 0.1). */
  lowThresh?: number;
  /** IoU cost limit of the first association (default 0.8). */
  matchThresh?: number;
  /** Frames a lost track is remembered at 30 FPS (default 30; scaled by frameRate / 30). */
  trackBuffer?: number;
  /** Frame rate of the source (default 30). */
  frameRate?: number;
  /** Track all classes together as the reference does (default false: each class on its own). */
  agnostic?: boolean;
  /** Tracks whose box area (w x h) is at most this are not reported (default 10, as the reference's demo). */
  minBoxArea?: number;
  /** Fuse IoU with detection scores (default true; the reference's --mot20 turns it off). */
  fuseScore?: boolean;
}

export const TRACKER_DEFAULTS: Required<Omit<TrackerOptions, 'agnostic'>> & { agnostic: boolean } = {
  trackThresh: 0.5,
  lowThresh: 0.1,
  matchThresh: 0.8,
  trackBuffer: 30,
  frameRate: 30,
  agnostic: false,
  minBoxArea: 10,
  fuseScore: true,
};

function checkNumber(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `tracker option ${name} must be a number from ${min} to ${max}, got ${JSON.stringify(v)}`, { input: name });
  }
  return v;
}

/** Options with defaults filled in and every value checked (ERR_INVALID_ARGUMENT naming the option). */
export function resolveTrackerOptions(o: TrackerOptions = {}): typeof TRACKER_DEFAULTS {
  const r = { ...TRACKER_DEFAULTS };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (r as Record<string, unknown>)[k] = v;
  checkNumber('trackThresh', r.trackThresh, 0, 1);
  checkNumber('lowThresh', r.lowThresh, 0, 1);
  checkNumber('matchThresh', r.matchThresh, 0, 1);
  checkNumber('trackBuffer', r.trackBuffer, 0, 1e6);
  checkNumber('frameRate', r.frameRate, 1e-3, 1e4);
  checkNumber('minBoxArea', r.minBoxArea, 0, Infinity);
  if (typeof r.agnostic !== 'boolean') throw new DeimError('ERR_INVALID_ARGUMENT', `tracker option agnostic must be true or false`, { input: 'agnostic' });
  if (typeof r.fuseScore !== 'boolean') throw new DeimError('ERR_INVALID_ARGUMENT', `tracker option fuseScore must be true or false`, { input: 'fuseScore' });
  return r;
}

export interface TrackSessionOptions extends TrackerOptions {
  /** Counting lines: "x1,y1,x2,y2[:name]" or { name, points }. */
  lines?: ReadonlyArray<string | CountLine>;
  /** Zones: "x1,y1,x2,y2,x3,y3,...[:name]" or { name, points }. */
  zones?: ReadonlyArray<string | Zone>;
  /** Keep this many past centre points per track for drawing trails (default 0: none). */
  trails?: number;
  /** Detections returned (and drawn) need score >= this (default 0: all); the tracker sees all. */
  threshold?: number;
  /**
   * Per zone, the dwell entries kept for tracks that are gone (default Infinity: all, as a video's
   * summary lists them). A session that runs for days (deimv2 serve) keeps the newest this many; the
   * visitor counts stay exact.
   */
  maxDwellEntries?: number;
}

export interface CheckedTrackSession {
  tracker: typeof TRACKER_DEFAULTS;
  lines: CountLine[];
  zones: Zone[];
  trails: number;
  threshold: number;
  maxDwellEntries: number;
}

/** A TrackSession's options, checked (ERR_INVALID_ARGUMENT naming the option) and with defaults filled in. */
export function checkTrackSessionOptions(options: TrackSessionOptions = {}): CheckedTrackSession {
  const { lines = [], zones = [], trails = 0, threshold = 0, maxDwellEntries = Infinity, ...trackerOptions } = options;
  const tracker = resolveTrackerOptions(trackerOptions);
  if (!Array.isArray(lines)) throw new DeimError('ERR_INVALID_ARGUMENT', 'lines must be an array');
  if (!Array.isArray(zones)) throw new DeimError('ERR_INVALID_ARGUMENT', 'zones must be an array');
  if (lines.length > GEOMETRY_LIMITS.maxLines) throw new DeimError('ERR_INVALID_ARGUMENT', `${lines.length} counting lines, over the limit of ${GEOMETRY_LIMITS.maxLines}`);
  if (zones.length > GEOMETRY_LIMITS.maxZones) throw new DeimError('ERR_INVALID_ARGUMENT', `${zones.length} zones, over the limit of ${GEOMETRY_LIMITS.maxZones}`);
  const checked = {
    lines: lines.map((l, i) => (typeof l === 'string' ? parseLine(l, i) : checkLine(l, i))),
    zones: zones.map((z, i) => (typeof z === 'string' ? parseZone(z, i) : checkZone(z, i))),
  };
  for (const [what, list] of [['line', checked.lines], ['zone', checked.zones]] as const) {
    const names = new Set<string>();
    for (const x of list) {
      if (names.has(x.name)) throw new DeimError('ERR_INVALID_ARGUMENT', `two ${what}s are named "${x.name}": give each its own name (x1,y1,...:name)`, { input: x.name });
      names.add(x.name);
    }
  }
  if (!Number.isInteger(trails) || trails < 0) throw new DeimError('ERR_INVALID_ARGUMENT', `trails must be an integer >= 0, got ${JSON.stringify(trails)}`);
  if (typeof threshold !== 'number' || !(threshold >= 0 && threshold <= 1)) throw new DeimError('ERR_INVALID_ARGUMENT', `threshold must be a number from 0 to 1, got ${JSON.stringify(threshold)}`);
  if (typeof maxDwellEntries !== 'number' || !(maxDwellEntries >= 0) || !(Number.isInteger(maxDwellEntries) || maxDwellEntries === Infinity)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `maxDwellEntries must be an integer >= 0 or Infinity, got ${JSON.stringify(maxDwellEntries)}`);
  }
  return { tracker, ...checked, trails, threshold, maxDwellEntries };
}
