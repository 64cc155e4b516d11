/**
 * What travels through Redis: the job data (an image reference and detection options, plain JSON
 * that is checked field by field and never evaluated), the job id, and how failures carry their
 * error code. Shared by the producer and the worker; both check every job.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { DeimError, type DeimErrorCode } from '../errors.js';
import { checkMaxDetections, checkThreshold } from '../postprocess/detections.js';
import type { Detection } from '../postprocess/types.js';

/** BullMQ job name of every detection job. */
export const JOB_NAME = 'detect';
export const JOB_VERSION = 1;
export const DEFAULT_MAX_BYTES = 20 * 1024 * 1024;

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
    if (!Array.isArray(o.classes) || !o.classes.every((c) => typeof c === 'string' && c.trim() !== '' && c.length <= 200) || o.classes.length > 1000) {
      throw invalid(`job option classes must be a list of class names, got ${describe(o.classes)}`);
    }
    out.classes = o.classes.map((c: string) => c.trim());
  }
  if (o.annotate !== undefined) {
    if (typeof o.annotate !== 'string' || !path.isAbsolute(o.annotate) || o.annotate.length > 4096 || o.annotate.includes('\0')) {
      throw invalid(`job option annotate must be an absolute file path, got ${describe(o.annotate)}`);
    }
    out.annotate = path.normalize(o.annotate);
  }
  return out;
}

/** Checks stored job data (the worker does this for every job before touching anything). */
export function checkJobData(data: unknown): JobData {
  if (typeof data !== 'object' || data === null) throw invalid(`job data must be an object, got ${describe(data)}`);
  const d = data as Record<string, unknown>;
  if (d.v !== JOB_VERSION) throw invalid(`job data version ${describe(d.v)} is not ${JOB_VERSION} (a producer of another deimv2 version?)`);
  const image = d.image as Record<string, unknown> | undefined;
  if (typeof image !== 'object' || image === null) throw invalid('job data has no image');
  let checked: JobImage;
  if (typeof image.path === 'string') checked = { path: image.path };
  else if (typeof image.url === 'string') checked = { url: checkUrl(image.url) };
  else if (typeof image.bytes === 'string') checked = { bytes: image.bytes };
  else throw invalid('job image must be {path}, {url} or {bytes}');
  if (checked && 'path' in checked && (!path.isAbsolute(checked.path) || checked.path.includes('\0'))) throw invalid(`job image path must be absolute, got ${describe(checked.path)}`);
  const given = typeof d.name === 'string' && d.name.length <= 4096 ? d.name : 'path' in checked ? checked.path : 'url' in checked ? checked.url : '(bytes)';
  // Names end up in logs and messages: no control characters (terminal escapes, fake log lines).
  const name = given.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
  return { v: JOB_VERSION, image: checked, name, options: checkJobOptions(d.options) };
}

/** Only http: and https: URLs (never file:, data:, ...). */
export function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(`${url}: not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new DeimError('ERR_INPUT_NOT_ALLOWED', `${url}: only http:// and https:// URLs are fetched, not ${u.protocol}`, { input: url });
  }
  return u.toString();
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

export function decodeFailure(reason: string | undefined): { code: string; message: string } {
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
  'ERR_INVALID_ARGUMENT',
  'ERR_NO_IMAGES',
  'ERR_CLASS_NAMES',
]);

function invalid(message: string): DeimError {
  return new DeimError('ERR_INVALID_ARGUMENT', message);
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
