/**
 * Raw model outputs -> Detection objects: score threshold, class filter, maximum count, boxes
 * mapped from the model's pixel frame back to the upright original image and clipped to it.
 */
import type { RawDetections } from '../backends/types.js';
import type { InputTransform } from '../image/types.js';
import { classLabel, type ClassInfo } from '../models/classes.js';
import { DeimError } from '../errors.js';
import { timeStage } from '../perf/stage-times.js';
import type { Detection } from './types.js';

export interface PostprocessOptions {
  /** Keep detections with score >= threshold (0 keeps all). */
  threshold: number;
  /** Keep only these class indices; undefined keeps all. */
  classIds?: ReadonlySet<number>;
  /** Keep at most this many, highest scores first. */
  maxDetections: number;
  classes: ClassInfo;
}

/** PostprocessOptions from the plain options sent with each task (class ids as an array). */
export function postprocessOptions(post: { threshold: number; maxDetections: number; classIds?: readonly number[] }, classes: ClassInfo): PostprocessOptions {
  return { threshold: post.threshold, maxDetections: post.maxDetections, classes, ...(post.classIds ? { classIds: new Set(post.classIds) } : {}) };
}

export const DEFAULT_THRESHOLD = 0.4;
export const DEFAULT_MAX_DETECTIONS = 300;

export function toDetections(raw: RawDetections, index: number, transform: InputTransform, options: PostprocessOptions): Detection[] {
  return timeStage('postprocess', () => detectionsOf(raw, index, transform, options));
}

function detectionsOf(raw: RawDetections, index: number, transform: InputTransform, options: PostprocessOptions): Detection[] {
  const { threshold, classIds, maxDetections, classes } = options;
  const k = raw.perImage;
  const base = index * k;
  const { imageWidth: w, imageHeight: h, scale, padX, padY } = transform;
  const out: Detection[] = [];
  for (let i = 0; i < k; i++) {
    const score = raw.scores[base + i]!;
    if (!(score >= threshold)) continue; // also drops NaN
    const classId = raw.labels[base + i]!;
    if (classIds && !classIds.has(classId)) continue;
    const b = (base + i) * 4;
    const x1 = raw.boxes[b]!, y1 = raw.boxes[b + 1]!, x2 = raw.boxes[b + 2]!, y2 = raw.boxes[b + 3]!;
    // DEIMv2's decoder (D-FINE's fine-grained distribution refinement) places each edge at a
    // distance from the query's reference point through a weighting function that also takes
    // negative values, so an edge can cross the opposite one: the export then returns x2 < x1
    // (or y2 < y1), seen on low-score queries such as in letterboxed images with wide padding.
    // Such a box covers no area; it is left out (the mapping below keeps order, so no other
    // box can come out inverted). Also drops NaN coordinates.
    if (!(x2 >= x1 && y2 >= y1)) continue;
    const box: [number, number, number, number] = [
      clip((x1 - padX) / scale, w),
      clip((y1 - padY) / scale, h),
      clip((x2 - padX) / scale, w),
      clip((y2 - padY) / scale, h),
    ];
    const { label, categoryId } = classLabel(classes, classId);
    out.push({ label, classId, categoryId, score, box });
  }
  // The exports already return top-k by score; sort anyway so the contract holds for any backend.
  out.sort((a, b) => b.score - a.score);
  if (out.length > maxDetections) out.length = maxDetections;
  return out;
}

function clip(v: number, max: number): number {
  return v < 0 ? 0 : v > max ? max : v;
}

/** A value as it was given, for messages: NaN and Infinity as themselves (JSON would say null). */
function shown(v: unknown): string {
  return typeof v === 'number' || typeof v === 'bigint' ? String(v) : v === undefined ? 'undefined' : JSON.stringify(v) ?? String(v);
}

export function checkThreshold(t: unknown, name = 'threshold'): number {
  const v = typeof t === 'string' && t.trim() !== '' ? Number(t) : t;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `${name} must be a number from 0 to 1, got ${shown(t)}`, { input: String(t) });
  }
  return v;
}

export function checkMaxDetections(m: unknown): number {
  const v = typeof m === 'string' && m.trim() !== '' ? Number(m) : m;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `maxDetections must be a positive integer, got ${shown(m)}`, { input: String(m) });
  }
  return v;
}

/**
 * Class names (or indices) to the class-index set of a class list; unknown names are an error.
 * A single string is a comma-separated list ('person' or 'person,car'), as on the command line.
 */
export function classFilter(names: readonly string[] | string | undefined, classes: ClassInfo): Set<number> | undefined {
  if (typeof names === 'string') names = names.split(',');
  if (names !== undefined && !Array.isArray(names)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `classes must be a list of class names (or one comma-separated string), got ${shown(names)}`, { input: shown(names) });
  }
  if (!names || names.length === 0) return undefined;
  const ids = new Set<number>();
  for (const raw of names) {
    if (typeof raw !== 'string' && typeof raw !== 'number') {
      throw new DeimError('ERR_INVALID_ARGUMENT', `classes must be class names or indices, got ${shown(raw)}`, { input: shown(raw) });
    }
    const name = String(raw).trim();
    if (name === '') continue;
    const idx = classes.names.findIndex((n) => n.toLowerCase() === name.toLowerCase());
    if (idx >= 0) ids.add(idx);
    else if (/^\d+$/.test(name) && Number(name) < classes.names.length) ids.add(Number(name));
    else throw new DeimError('ERR_INVALID_ARGUMENT', `unknown class "${name}" in classes filter: the model's classes are ${classes.names.slice(0, 8).join(', ')}, ...`, { input: name });
  }
  return ids;
}
