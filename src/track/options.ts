/**
 * The tracking options, one table for the command line and the API: each row names the API key
 * (TrackSessionOptions), the CLI flag, its help text and how a CLI string becomes the value.
 * `deimv2 track` and `deimv2 detect <video> --track` register these rows; the API takes the keys.
 */
import { DeimError } from '../errors.js';
import type { TrackSessionOptions } from './session.js';

export interface TrackOptionRow {
  key: keyof TrackSessionOptions;
  /** Commander flag, e.g. '--track-buffer <frames>'. */
  flag: string;
  description: string;
  /** Repeatable flag: the values are collected into an array. */
  repeatable?: boolean;
  /** Flag without a value. */
  boolean?: boolean;
  parse?: (value: string, flag: string) => unknown;
}

function number(min: number, max: number, integer = false) {
  return (value: string, flag: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got "${value}"`, { input: value });
    }
    return n;
  };
}

export const TRACK_OPTION_TABLE: readonly TrackOptionRow[] = [
  { key: 'agnostic', flag: '--track-agnostic', boolean: true, description: 'track all classes together, as the reference ByteTrack does (default: each class on its own)' },
  { key: 'trackThresh', flag: '--track-thresh <score>', description: 'detections above this lead tracks; new tracks need it + 0.1 (default 0.5)', parse: number(0, 1) },
  { key: 'lowThresh', flag: '--track-low <score>', description: 'detections above this (and below --track-thresh) only keep tracks going (default 0.1)', parse: number(0, 1) },
  { key: 'matchThresh', flag: '--match-thresh <cost>', description: 'first association: highest 1 - IoU x score to match (default 0.8)', parse: number(0, 1) },
  { key: 'trackBuffer', flag: '--track-buffer <frames>', description: 'frames a lost track is kept at 30 FPS, scaled by FPS / 30 (default 30)', parse: number(0, 1e6, true) },
  { key: 'minBoxArea', flag: '--min-box-area <px>', description: 'tracks with a box of at most this many square pixels are not reported (default 10)', parse: number(0, 1e12) },
  { key: 'frameRate', flag: '--fps <n>', description: 'frame rate for the track buffer and dwell times (default: the video\'s, or from the JSONL\'s pts, else 30)', parse: number(0.001, 10000) },
  { key: 'lines', flag: '--line <x1,y1,x2,y2[:name]>', repeatable: true, description: 'count tracks crossing this line per class and direction (repeatable)' },
  { key: 'zones', flag: '--zone <x1,y1,x2,y2,x3,y3,...[:name]>', repeatable: true, description: 'occupancy per frame and dwell per track in this polygon (repeatable)' },
  { key: 'trails', flag: '--trails <frames>', description: 'draw each track\'s path over this many frames (video)', parse: number(0, 10000, true) },
];

/** Commander's camelCase property for a flag ('--track-buffer <frames>' -> 'trackBuffer'). */
export function flagProperty(flag: string): string {
  const name = flag.split(/[ ,]/)[0]!.replace(/^--/, '');
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** TrackSessionOptions from parsed CLI values (commander's option object). */
export function trackOptionsFromCli(values: Record<string, unknown>): TrackSessionOptions {
  const out: Record<string, unknown> = {};
  for (const row of TRACK_OPTION_TABLE) {
    const v = values[flagProperty(row.flag)];
    if (v === undefined) continue;
    if (row.boolean) out[row.key] = v === true;
    else if (row.repeatable) out[row.key] = (v as string[]).slice();
    else out[row.key] = row.parse ? row.parse(String(v), row.flag.split(' ')[0]!) : v;
  }
  return out as TrackSessionOptions;
}
