/**
 * What travels through Redis: the job data (an image reference and detection options, plain JSON
 * that is checked field by field and never evaluated), the job id, and how failures carry their
 * error code. Shared by the producer and the worker; both check every job.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { DeimError, type DeimErrorCode } from '../errors.js';
import { INPUT_LIMITS, parseJsonBounded } from '../input/limits.js';
import { checkMaxDetections, checkThreshold } from '../postprocess/detections.js';
import type { Detection } from '../postprocess/types.js';

/** BullMQ job name of every detection job. */
export const JOB_NAME = 'detect';
export const JOB_VERSION = 1;
export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;

/**
 * Bounds of what a job may hold. Job data is user-controlled (anyone who can write to Redis can
 * add a job), and every field of it ends up in messages, logs and stored failure reasons.
 */
export const JOB_LIMITS = {
  /** An image path or an annotate path (Linux PATH_MAX). */
  maxPathLength: 4096,
  /** An image URL (what common servers and proxies take). */
  maxUrlLength: 8192,
  /** A job's printable name. */
  maxNameLength: 4096,
  /** Class names in the classes option, and the length of one. */
  maxClasses: 1000,
  maxClassNameLength: 200,
  /** A stored result (the JSON of one image's detections; 300 detections take about 40 KB). */
  maxResultChars: INPUT_LIMITS.maxLineBytes,
  /** Detections in one stored result. */
  maxResultDetections: 10_000,
} as const;

/** Key of the job data the worker puts in place of data it cannot take (not JSON, or too large); never a real option. */
export const UNREADABLE_DATA = '__deimv2_unreadable_data';

/** Per-job detection options: the same meaning and checks as the CLI's and detect()'s. */
export interface DetectionJobOptions {
  threshold?: number;
  classes?: string[];
  maxDetections?: number;
  /** Write an annotated copy here (absolute path under one of the worker's --allow-dir roots). */
  annotate?: string;
}

/** The image of a job as stored in Redis. */
export type JobImage = { path: string } | { url: string } | { bytes: string /* base64 */ };

export interface JobData {
  v: number;
  image: JobImage;
  /** A printable name: the file or URL, or the caller's name for bytes. */
  name: string;
  options: DetectionJobOptions;
}

/** A job's stored result: the detection object detect() returns, and where the annotated copy went. */
export interface JobResult {
  file: string;
  width: number;
  height: number;
  detections: Detection[];
  annotated?: string;
  /** Model and backend of the worker that ran it. */
  model: string;
  backend: string;
}

const OPTION_KEYS = new Set(['threshold', 'classes', 'maxDetections', 'annotate']);

/** Checks job options from any source; unknown keys and wrong types are ERR_INVALID_ARGUMENT. */
export function checkJobOptions(options: unknown): DetectionJobOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw invalid(`job options must be an object, got ${describe(options)}`);
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!OPTION_KEYS.has(key)) throw invalid(`unknown job option "${key}" (known: ${[...OPTION_KEYS].join(', ')})`);
  const out: DetectionJobOptions = {};
  if (o.threshold !== undefined) out.threshold = checkThreshold(o.threshold);
  if (o.maxDetections !== undefined) out.maxDetections = checkMaxDetections(o.maxDetections);
  if (o.classes !== undefined) {
    if (Array.isArray(o.classes) && o.classes.length > JOB_LIMITS.maxClasses) throw invalid(`job option classes: ${o.classes.length} class names, over the limit of ${JOB_LIMITS.maxClasses}`);
    if (!Array.isArray(o.classes) || !o.classes.every((c) => typeof c === 'string' && c.trim() !== '' && c.length <= JOB_LIMITS.maxClassNameLength)) {
      throw invalid(`job option classes must be a list of class names (each at most ${JOB_LIMITS.maxClassNameLength} characters), got ${describe(o.classes)}`);
    }
    out.classes = o.classes.map((c: string) => c.trim());
  }
  if (o.annotate !== undefined) {
    if (typeof o.annotate !== 'string' || !path.isAbsolute(o.annotate) || o.annotate.length > JOB_LIMITS.maxPathLength || o.annotate.includes('\0')) {
      throw invalid(`job option annotate must be an absolute file path of at most ${JOB_LIMITS.maxPathLength} characters, got ${describe(o.annotate)}`);
    }
    out.annotate = path.normalize(o.annotate);
  }
  return out;
}

/** Checks stored job data (the worker does this for every job before touching anything). */
export function checkJobData(data: unknown): JobData {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw invalid(`job data must be an object, got ${describe(data)}`);
  const d = data as Record<string, unknown>;
  if (typeof d[UNREADABLE_DATA] === 'string') throw new DeimError(d.code === 'ERR_INPUT_TOO_LARGE' ? 'ERR_INPUT_TOO_LARGE' : 'ERR_INPUT_FORMAT', `job data ${d[UNREADABLE_DATA]}`);
  if (d.v !== JOB_VERSION) throw invalid(`job data version ${describe(d.v)} is not ${JOB_VERSION} (a producer of another deimv2 version?)`);
  const image = d.image as Record<string, unknown> | undefined;
  if (typeof image !== 'object' || image === null) throw invalid('job data has no image');
  let checked: JobImage;
  if (typeof image.path === 'string') checked = { path: checkImagePath(image.path) };
  else if (typeof image.url === 'string') checked = { url: checkUrl(image.url) };
  else if (typeof image.bytes === 'string') checked = { bytes: image.bytes };
  else throw invalid('job image must be {path}, {url} or {bytes}');
  const given = typeof d.name === 'string' && d.name.length <= JOB_LIMITS.maxNameLength ? d.name : 'path' in checked ? checked.path : 'url' in checked ? checked.url : '(bytes)';
  // Names end up in logs and messages: no control characters (terminal escapes, fake log lines).
  const name = given.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return { v: JOB_VERSION, image: checked, name, options: checkJobOptions(d.options) };
}

/** An absolute path without NUL, at most maxPathLength characters. */
export function checkImagePath(p: string): string {
  if (p.length > JOB_LIMITS.maxPathLength) throw invalid(`job image path is ${p.length} characters, over the limit of ${JOB_LIMITS.maxPathLength}: ${describe(p)}`);
  if (!path.isAbsolute(p) || p.includes('\0')) throw invalid(`job image path must be absolute, got ${describe(p)}`);
  return p;
}

/** Only http: and https: URLs (never file:, data:, ...). */
export function checkUrl(url: string): string {
  if (url.length > JOB_LIMITS.maxUrlLength) throw invalid(`image URL is ${url.length} characters, over the limit of ${JOB_LIMITS.maxUrlLength}: ${describe(url)}`);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`${url}: not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new DeimError('ERR_INPUT_NOT_ALLOWED', `${url}: only http:// and https:// URLs are fetched, not ${u.protocol}`, { input: url });
  }
  const out = u.toString();
  if (out.length > JOB_LIMITS.maxUrlLength) throw invalid(`image URL is ${out.length} characters once encoded, over the limit of ${JOB_LIMITS.maxUrlLength}: ${describe(out)}`);
  return out;
}

/**
 * A stored result read back from Redis (the worker's return value): JSON within maxResultChars
 * and 8 levels, with the fields and types of a JobResult. Anything else (written into Redis by
 * something other than a deimv2 worker, or damaged) is ERR_QUEUE naming the job and the field.
 */
export function parseJobResult(value: unknown, id: string): JobResult {
  const where = `job ${id}: stored result`;
  let v = value;
  if (typeof v === 'string') {
    if (v.length > JOB_LIMITS.maxResultChars) throw badResult(where, `is ${v.length} characters, over the limit of ${JOB_LIMITS.maxResultChars}`);
    try {
      v = parseJsonBounded(v, where, { maxDepth: 8 });
    } catch (e) {
      throw badResult(where, (e as Error).message.slice(where.length + 2));
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badResult(where, `is not an object (${describe(v)})`);
  const r = v as Record<string, unknown>;
  const text = (k: string, max: number = JOB_LIMITS.maxPathLength) => {
    if (typeof r[k] !== 'string' || (r[k] as string).length > max) throw badResult(where, `"${k}" must be a string of at most ${max} characters, got ${describe(r[k])}`);
    return r[k] as string;
  };
  const size = (k: string) => {
    if (!Number.isInteger(r[k]) || (r[k] as number) < 1) throw badResult(where, `"${k}" must be a positive integer, got ${describe(r[k])}`);
    return r[k] as number;
  };
  const file = text('file', Math.max(JOB_LIMITS.maxPathLength, JOB_LIMITS.maxUrlLength));
  const width = size('width');
  const height = size('height');
  if (!Array.isArray(r.detections)) throw badResult(where, `"detections" must be an array, got ${describe(r.detections)}`);
  if (r.detections.length > JOB_LIMITS.maxResultDetections) throw badResult(where, `${r.detections.length} detections, over the limit of ${JOB_LIMITS.maxResultDetections}`);
  const detections: Detection[] = r.detections.map((d: unknown, i: number) => {
    const o = (typeof d === 'object' && d !== null ? d : {}) as Record<string, unknown>;
    const box = o.box;
    const ok =
      typeof o.label === 'string' && o.label.length <= JOB_LIMITS.maxClassNameLength &&
      Number.isInteger(o.classId) && (o.classId as number) >= 0 &&
      Number.isInteger(o.categoryId) &&
      typeof o.score === 'number' && o.score >= 0 && o.score <= 1 &&
      Array.isArray(box) && box.length === 4 && box.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (!ok) throw badResult(where, `detections[${i}] must be {label, classId, categoryId, score 0..1, box of 4 finite numbers}, got ${describe(d)}`);
    return { label: o.label as string, classId: o.classId as number, categoryId: o.categoryId as number, score: o.score as number, box: [...(box as number[])] as Detection['box'] };
  });
  const out: JobResult = { file, width, height, detections, model: text('model', 200), backend: text('backend', 200) };
  if (r.annotated !== undefined) out.annotated = text('annotated');
  return out;
}

function badResult(where: string, message: string): DeimError {
  return new DeimError('ERR_QUEUE', `${where} ${message} (not written by a deimv2 worker of this version?)`);
}

/**
 * The default job id: a hash of the image (its bytes; for a path or URL, the path or URL) and the
 * options, so the same job added twice is one job with one result.
 */
export function defaultJobId(image: JobImage, bytes: Uint8Array | undefined, options: DetectionJobOptions): string {
  const h = createHash('sha256');
  if (bytes) h.update('bytes\0').update(createHash('sha256').update(bytes).digest('hex'));
  else if ('path' in image) h.update('path\0').update(image.path);
  else if ('url' in image) h.update('url\0').update(image.url);
  h.update('\0').update(canonicalJson(options));
  return `d2-${h.digest('hex').slice(0, 40)}`;
}

/** Caller ids: BullMQ forbids ':' and all-digit ids; keep them printable and short. */
export function checkJobId(id: unknown): string {
  if (typeof id !== 'string' || id === '' || id.length > 256 || /^\d+$/.test(id) || /[:\s\0]/.test(id)) {
    throw invalid(`job id must be 1-256 characters without ':' or spaces, and not only digits; got ${describe(id)}`);
  }
  return id;
}

function canonicalJson(o: DetectionJobOptions): string {
  return JSON.stringify(Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))));
}

/** Failures are stored as "ERR_CODE: message" in BullMQ's failedReason. */
export function encodeFailure(code: string, message: string): string {
  return `${code}: ${message}`;
}

/** Longest failure message kept from a stored reason (the worker's are far shorter; Redis is writable by others). */
const MAX_REASON_CHARS = 16 * 1024;

export function decodeFailure(reason: string | undefined): { code: string; message: string } {
  if (typeof reason === 'string' && reason.length > MAX_REASON_CHARS) reason = `${reason.slice(0, MAX_REASON_CHARS)}... (${reason.length} characters)`;
  const m = /^(ERR_[A-Z_]+): ([\s\S]*)$/.exec(reason ?? '');
  if (m) return { code: m[1]!, message: m[2]! };
  return { code: 'ERR_QUEUE', message: reason || 'job failed without a reason' };
}

/** Bad input: retrying cannot help, so the job fails at once. */
export const PERMANENT_CODES: ReadonlySet<DeimErrorCode | string> = new Set([
  'ERR_INPUT_NOT_FOUND',
  'ERR_INPUT_EMPTY',
  'ERR_INPUT_UNREADABLE',
  'ERR_INPUT_TOO_LARGE',
  'ERR_INPUT_NOT_ALLOWED',
  'ERR_INPUT_FORMAT',
  'ERR_INVALID_ARGUMENT',
  'ERR_NO_IMAGES',
  'ERR_CLASS_NAMES',
]);

function invalid(message: string): DeimError {
  return new DeimError('ERR_INVALID_ARGUMENT', message);
}

/** A short printable form of any value; bounded work whatever its size (a 100 MB string, a million-item array). */
function describe(v: unknown): string {
  if (typeof v === 'string' && v.length > 80) v = v.slice(0, 80);
  else if (Array.isArray(v) && v.length > 10) v = v.slice(0, 10);
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    // Nested too deep to print (or a cycle): say what it is, never recurse into it.
    return Array.isArray(v) ? `an array of ${v.length}` : typeof v === 'object' ? 'an object' : typeof v;
  }
  if (s === undefined) return String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
