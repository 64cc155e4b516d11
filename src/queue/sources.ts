/**
 * The worker's side of a job's image and output: a path is resolved (symlinks too) and must lie
 * under an --allow-dir root; a URL is fetched over http(s) only, with a size cap and a timeout;
 * bytes are capped. An annotated copy goes under an allowed root and never over the job's input.
 * Errors say which rule refused what; transient ones (network, HTTP 5xx) are marked for retry.
 */
import { lstat, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { WRITABLE_EXTENSIONS } from '../annotate/write.js';
import { DeimError, errorMessage } from '../errors.js';
import type { JobImage } from './jobs.js';
import { fetchImageUrl } from '../image/fetch.js';

export interface SourcePolicy {
  /** Real paths of the folders path jobs and annotated outputs may use (empty: none). */
  allowDirs: readonly string[];
  maxBytes: number;
  urlTimeoutMs: number;
}

/** A job image ready for the detector: a real file path, or bytes. */
export interface OpenedImage {
  input: string | Buffer;
  /** The real path of a file input. */
  realPath?: string;
}

const TRANSIENT = Symbol.for('deimv2.queue.transient');

/** Marks an error as worth retrying (a network failure, not bad input). */
export function transient(e: DeimError): DeimError {
  (e as unknown as Record<symbol, boolean>)[TRANSIENT] = true;
  return e;
}

export function isTransient(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[TRANSIENT] === true;
}

/** Real paths of the --allow-dir roots; each must be an existing folder. */
export async function resolveAllowDirs(dirs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const dir of dirs) {
    let real: string;
    try {
      real = await realpath(dir);
      if (!(await stat(real)).isDirectory()) throw new Error('not a folder');
    } catch (e) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `--allow-dir ${dir}: ${errorMessage(e)}`, { input: dir });
    }
    out.push(real);
  }
  return out;
}

export function isUnder(file: string, roots: readonly string[]): boolean {
  return roots.some((root) => {
    const rel = path.relative(root, file);
    return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
  });
}

function notAllowed(what: string, policy: SourcePolicy): DeimError {
  const hint = policy.allowDirs.length === 0 ? 'this worker allows no folders (start it with --allow-dir <folder>)' : "it is outside the worker's --allow-dir folders";
  return new DeimError('ERR_INPUT_NOT_ALLOWED', `${what}: not allowed: ${hint}`, { input: what });
}

function tooLarge(name: string, size: number, max: number): DeimError {
  return new DeimError('ERR_INPUT_TOO_LARGE', `${name}: ${size} bytes is more than the worker's --max-bytes ${max}`, { input: name });
}

export async function openJobImage(image: JobImage, name: string, policy: SourcePolicy): Promise<OpenedImage> {
  if ('path' in image) return openPath(image.path, policy);
  if ('url' in image) return { input: await fetchImage(image.url, policy) };
  // base64 is 4 characters per 3 bytes: refuse before decoding anything too large.
  const estimate = Math.floor((image.bytes.length * 3) / 4);
  if (estimate > policy.maxBytes + 2) throw tooLarge(name, estimate, policy.maxBytes);
  const bytes = Buffer.from(image.bytes, 'base64');
  if (bytes.length > policy.maxBytes) throw tooLarge(name, bytes.length, policy.maxBytes);
  return { input: bytes };
}

async function openPath(file: string, policy: SourcePolicy): Promise<OpenedImage> {
  if (policy.allowDirs.length === 0) throw notAllowed(file, policy);
  let real: string;
  try {
    real = await realpath(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Say "not found" only for paths the worker may read at all.
    if (!isUnder(path.resolve(file), policy.allowDirs)) throw notAllowed(file, policy);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DeimError('ERR_INPUT_NOT_FOUND', `${file}: no such file`, { input: file });
    throw new DeimError('ERR_INPUT_UNREADABLE', `${file}: ${errorMessage(e)}`, { input: file });
  }
  if (!isUnder(real, policy.allowDirs)) throw notAllowed(real === file ? file : `${file} (-> ${real})`, policy);
  const info = await stat(real).catch((e) => {
    throw new DeimError('ERR_INPUT_UNREADABLE', `${file}: ${errorMessage(e)}`, { input: file });
  });
  if (!info.isFile()) throw new DeimError('ERR_INPUT_UNREADABLE', `${file}: not a regular file`, { input: file });
  if (info.size > policy.maxBytes) throw tooLarge(file, info.size, policy.maxBytes);
  return { input: real, realPath: real };
}

/**
 * GET an http(s) URL into memory through the one image-URL fetcher (src/image/fetch.ts: credentials
 * sent as Basic auth and hidden in messages, redirects kept on http(s)), with the worker's
 * --max-bytes and --url-timeout. What may pass (no answer, a timeout, a 5xx, 408 or 429) is marked
 * transient, so the job is tried again; a 4xx, a refused scheme or a too-large body is not.
 */
export async function fetchImage(url: string, policy: SourcePolicy): Promise<Buffer> {
  try {
    return await fetchImageUrl(url, { maxBytes: policy.maxBytes, timeoutSeconds: policy.urlTimeoutMs / 1000 });
  } catch (e) {
    if (e instanceof DeimError && (e.code === 'ERR_INPUT_TIMEOUT' || (e.code === 'ERR_INPUT_UNREADABLE' && /: (cannot fetch: |HTTP (5\d\d|408|429)\b)/.test(e.message)))) throw transient(e);
    throw e;
  }
}

/**
 * Checks where a job's annotated copy may go: an image extension we write, under an allowed root
 * once symlinks of the existing part are resolved, not a folder, and never the job's input.
 * Returns the real target path to write (atomically, by the caller).
 */
export async function checkOutputPath(target: string, inputReal: string | undefined, policy: SourcePolicy): Promise<string> {
  const ext = path.extname(target).toLowerCase();
  if (!WRITABLE_EXTENSIONS.includes(ext)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `annotate ${target}: unknown image extension "${ext || '(none)'}"; use one of ${WRITABLE_EXTENSIONS.join(', ')}`, { input: target });
  }
  if (policy.allowDirs.length === 0) throw notAllowed(`annotate ${target}`, policy);
  // Resolve the deepest existing ancestor; the rest is created by the writer.
  const missing: string[] = [];
  let existing = path.dirname(target);
  let realDir: string | undefined;
  for (;;) {
    try {
      realDir = await realpath(existing);
      break;
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) break;
      missing.unshift(path.basename(existing));
      existing = parent;
    }
  }
  if (realDir === undefined) throw notAllowed(`annotate ${target}`, policy);
  const real = path.join(realDir, ...missing, path.basename(target));
  if (!isUnder(real, policy.allowDirs)) throw notAllowed(`annotate ${target}`, policy);
  const info = await lstat(real).catch(() => undefined);
  if (info?.isDirectory()) throw new DeimError('ERR_INVALID_ARGUMENT', `annotate ${target}: is a folder`, { input: target });
  const resolvedExisting = info ? await realpath(real).catch(() => real) : real;
  if (inputReal !== undefined && (resolvedExisting === inputReal || real === inputReal)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `annotate ${target}: refusing to overwrite the job's input image`, { input: target });
  }
  return real;
}
