/**
 * The service's streams: a config file (JSON or YAML) or one stream's JSON body (POST
 * /v1/streams), checked with the same vocabulary and checks as `detect`: sources by the video
 * source rules (protocol whitelist; local files only under an --allow-dir), lines and zones in the
 * --line/--zone syntax, the tracking options of the one option table, threshold and classes as
 * the detector checks them. Every error is ERR_INVALID_ARGUMENT naming the field
 * ("streams[2].source: ...").
 */
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DeimError, errorMessage } from '../errors.js';
import { parseJsonBounded, readTextBounded } from '../input/limits.js';
import type { ClassInfo } from '../models/classes.js';
import { checkThreshold, classFilter } from '../postprocess/detections.js';
import { checkTrackSessionOptions, type TrackSessionOptions } from '../track/check.js';
import { TRACK_OPTION_TABLE } from '../track/options.js';
import { checkLocalSource, isLiveSource } from '../video/source.js';
import { redactText } from './redact.js';

export interface StreamConfig {
  /** Letters, digits, "-", "_" and "." (1 to 64): it names the stream in URLs and metrics. */
  id: string;
  /** rtsp(s), rtmp(s), http(s), udp, tcp, srt or rtp URL, a webcam (/dev/videoN), or a file under an --allow-dir. */
  source: string;
  /** Track objects (default: on when lines or zones are given). */
  track?: boolean;
  /** Counting lines, "x1,y1,x2,y2[:name]" as --line. */
  lines?: string[];
  /** Zones, "x1,y1,x2,y2,x3,y3,...[:name]" as --zone. */
  zones?: string[];
  /** Live sources: process at most this many frames a second (the others are skipped, not counted as dropped). */
  maxFps?: number;
  /** Score threshold for this stream (default: the detector's). */
  threshold?: number;
  /** Keep only these classes (names, as --classes). */
  classes?: string[];
  /** Tracking options of the option table (trackThresh, trackBuffer, ...), as in the API. */
  tracking?: Omit<TrackSessionOptions, 'lines' | 'zones' | 'threshold'>;
}

/** A checked stream: the config plus what the service derives from it. */
export interface CheckedStream extends StreamConfig {
  live: boolean;
}

export interface ConfigContext {
  /** Folders file sources may be under (resolved). */
  allowDirs: readonly string[];
  /** The detector's classes, to check `classes` (when the model is loaded). */
  classes?: ClassInfo;
}

/** Streams one service runs (each is an ffmpeg process and a tracker). */
export const MAX_STREAMS = 256;
/** The longest track buffer a stream may ask for (frames at 30 FPS: 5 minutes). */
const MAX_TRACK_BUFFER = 9000;
/** Nesting of a config document (a stream's config needs 3 levels). */
const MAX_CONFIG_DEPTH = 16;

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const KEYS = new Set(['id', 'source', 'track', 'lines', 'zones', 'maxFps', 'threshold', 'classes', 'tracking']);
const TRACKING_KEYS = new Set<string>(TRACK_OPTION_TABLE.map((r) => r.key).filter((k) => k !== 'lines' && k !== 'zones'));

const fieldError = (field: string, message: string) => new DeimError('ERR_INVALID_ARGUMENT', `${field}: ${message}`, { input: field });

/** Reads a config file (JSON, or YAML by its extension .yaml/.yml) and checks its streams. */
export async function readConfigFile(file: string, context: ConfigContext): Promise<CheckedStream[]> {
  const text = await readTextBounded(file, { maxBytes: 4 * 1024 * 1024 });
  let doc: unknown;
  if (/\.ya?ml$/i.test(file)) {
    try {
      doc = parseYaml(text, { maxAliasCount: 100 });
    } catch (e) {
      // The yaml parser recurses per flow level: a deep nest overflows its stack before any depth check.
      if (e instanceof RangeError || /call stack/i.test(errorMessage(e))) throw new DeimError('ERR_INPUT_TOO_LARGE', `${file}: YAML nested deeper than the limit of ${MAX_CONFIG_DEPTH} levels`, { input: file });
      throw new DeimError('ERR_INPUT_FORMAT', `${file}: not valid YAML: ${errorMessage(e).split('\n')[0]}`, { input: file });
    }
    if (depthOver(doc, MAX_CONFIG_DEPTH)) throw new DeimError('ERR_INPUT_TOO_LARGE', `${file}: YAML nested deeper than the limit of ${MAX_CONFIG_DEPTH} levels`, { input: file });
  } else {
    doc = parseJsonBounded(text, file);
  }
  try {
    return checkConfig(doc, context);
  } catch (e) {
    // Field errors name the file too: "streams.yaml: streams[2].source: ...".
    if (e instanceof DeimError) throw new DeimError(e.code, `${file}: ${e.message}`, { input: file, cause: e });
    throw e;
  }
}

/** Whether a parsed document nests arrays/objects deeper than `limit` (iterative: no recursion). */
function depthOver(doc: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[doc, 1]];
  while (stack.length > 0) {
    const [x, depth] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (depth > limit) return true;
    for (const v of Object.values(x)) if (v !== null && typeof v === 'object') stack.push([v, depth + 1]);
  }
  return false;
}

/** Checks a parsed config document `{ streams: [...] }`. */
export function checkConfig(doc: unknown, context: ConfigContext, label = 'config'): CheckedStream[] {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw fieldError(label, 'must be an object { "streams": [...] }');
  for (const key of Object.keys(doc)) if (key !== 'streams') throw fieldError(`${label}: ${key}`, 'unknown field (the config holds "streams")');
  const streams = (doc as { streams?: unknown }).streams ?? [];
  if (!Array.isArray(streams)) throw fieldError('streams', 'must be an array of streams');
  if (streams.length > MAX_STREAMS) throw new DeimError('ERR_INPUT_TOO_LARGE', `streams: ${streams.length} streams, over the limit of ${MAX_STREAMS} a service`, { input: 'streams' });
  const out = streams.map((s, i) => checkStream(s, context, `streams[${i}]`));
  const ids = new Set<string>();
  out.forEach((s, i) => {
    if (ids.has(s.id)) throw fieldError(`streams[${i}].id`, `"${s.id}" is used by another stream`);
    ids.add(s.id);
  });
  return out;
}

/** Checks one stream's config; `where` prefixes the field names in errors ("streams[2]", or "" for a request body). */
export function checkStream(value: unknown, context: ConfigContext, where = ''): CheckedStream {
  const field = (name: string) => (where ? `${where}.${name}` : name);
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw fieldError(where || 'stream', 'must be an object { id, source, ... }');
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!KEYS.has(key)) throw fieldError(field(key), `unknown field (expected ${[...KEYS].join(', ')})`);
  if (typeof v.id !== 'string' || !ID.test(v.id)) throw fieldError(field('id'), `must be 1 to 64 letters, digits, "-", "_" or "." (starting with a letter or digit), got ${shown(v.id)}`);
  if (typeof v.source !== 'string' || v.source === '') throw fieldError(field('source'), `must be a URL, a webcam or a file, got ${shown(v.source)}`);
  const source = v.source;
  const live = checkSource(source, context.allowDirs, field('source'));
  const out: CheckedStream = { id: v.id, source, live };
  const strings = (name: 'lines' | 'zones' | 'classes'): string[] | undefined => {
    const x = v[name];
    if (x === undefined) return undefined;
    if (name === 'classes' && typeof x === 'string') return x.split(',').map((s) => s.trim()).filter(Boolean);
    if (!Array.isArray(x) || !x.every((s) => typeof s === 'string')) throw fieldError(field(name), `must be an array of strings, got ${shown(x)}`);
    return x as string[];
  };
  const lines = strings('lines');
  const zones = strings('zones');
  if (lines) out.lines = lines;
  if (zones) out.zones = zones;
  if (v.track !== undefined && typeof v.track !== 'boolean') throw fieldError(field('track'), `must be true or false, got ${shown(v.track)}`);
  out.track = v.track === true || (v.track === undefined && (lines?.length ?? 0) + (zones?.length ?? 0) > 0);
  if (v.track === false && (lines?.length || zones?.length)) throw fieldError(field('track'), 'lines and zones count tracks: they need track (leave it out or set it true)');
  if (v.tracking !== undefined) {
    if (v.tracking === null || typeof v.tracking !== 'object' || Array.isArray(v.tracking)) throw fieldError(field('tracking'), 'must be an object of tracking options');
    for (const key of Object.keys(v.tracking)) if (!TRACKING_KEYS.has(key)) throw fieldError(field(`tracking.${key}`), `unknown tracking option (expected ${[...TRACKING_KEYS].join(', ')})`);
    for (const [key, value] of Object.entries(v.tracking as Record<string, unknown>)) {
      // The bounds of the command line's flags (trails at most 10000, ...), and a service's own on the track buffer:
      // lost tracks are kept that many frames, and a service runs for days.
      const row = TRACK_OPTION_TABLE.find((r) => r.key === key);
      if (typeof value !== 'number') continue;
      try {
        row?.parse?.(String(value), key);
      } catch (e) {
        throw fieldError(field(`tracking.${key}`), errorMessage(e));
      }
      if (key === 'trackBuffer' && value > MAX_TRACK_BUFFER) throw fieldError(field('tracking.trackBuffer'), `at most ${MAX_TRACK_BUFFER} frames in a service (lost tracks are kept that long), got ${shown(value)}`);
    }
    out.tracking = v.tracking as StreamConfig['tracking'] & object;
  }
  if (out.track) {
    // The lines, zones and options exactly as `detect --track --line/--zone` checks them, with the field named.
    for (const [name, list] of [['lines', lines], ['zones', zones]] as const) {
      list?.forEach((spec, i) => {
        try {
          checkTrackSessionOptions({ [name]: [spec] });
        } catch (e) {
          throw fieldError(field(`${name}[${i}]`), errorMessage(e));
        }
      });
    }
    try {
      checkTrackSessionOptions({ ...out.tracking, ...(lines ? { lines } : {}), ...(zones ? { zones } : {}) });
    } catch (e) {
      throw fieldError(field(out.tracking && !/line|zone/.test(errorMessage(e)) ? 'tracking' : 'lines'), errorMessage(e));
    }
  }
  if (v.maxFps !== undefined) {
    if (typeof v.maxFps !== 'number' || !(v.maxFps > 0 && v.maxFps <= 1000)) throw fieldError(field('maxFps'), `must be a number above 0 (at most 1000), got ${shown(v.maxFps)}`);
    out.maxFps = v.maxFps;
  }
  if (v.threshold !== undefined) {
    try {
      out.threshold = checkThreshold(v.threshold as number);
    } catch (e) {
      throw fieldError(field('threshold'), errorMessage(e));
    }
  }
  const classes = strings('classes');
  if (classes) {
    if (context.classes) {
      try {
        classFilter(classes, context.classes);
      } catch (e) {
        throw fieldError(field('classes'), errorMessage(e));
      }
    }
    out.classes = classes;
  }
  return out;
}

/** Checks a source as `detect` does (protocol whitelist); a local file or device must lie under an --allow-dir. Returns whether it is live. */
function checkSource(source: string, allowDirs: readonly string[], field: string): boolean {
  try {
    checkLocalSource(source);
  } catch (e) {
    throw fieldError(field, redactText(errorMessage(e), [source]));
  }
  if (isLiveSource(source)) return true; // URLs and webcams (devices, not files)
  if (allowDirs.length === 0) throw fieldError(field, 'local files are not allowed (start the service with --allow-dir DIR to allow files under DIR)');
  let real: string;
  try {
    real = realpathSync(path.resolve(source.replace(/%0?\d*d.*$/, '')));
  } catch {
    real = path.resolve(source);
  }
  const inside = allowDirs.some((dir) => real === dir || real.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep));
  if (!inside) throw fieldError(field, `${source} is not under an --allow-dir (${allowDirs.join(', ')})`);
  return false;
}

/** The folders of --allow-dir, resolved through links (each must exist). */
export function resolveAllowDirs(dirs: readonly string[]): string[] {
  return dirs.map((dir) => {
    try {
      return realpathSync(dir);
    } catch (e) {
      throw new DeimError('ERR_INPUT_NOT_FOUND', `--allow-dir ${dir}: ${errorMessage(e)}`, { input: dir });
    }
  });
}

function shown(x: unknown): string {
  if (x === undefined) return 'nothing';
  const text = typeof x === 'number' && !Number.isFinite(x) ? String(x) : (JSON.stringify(x) ?? String(x));
  return redactText(text.length > 80 ? text.slice(0, 77) + '...' : text);
}
