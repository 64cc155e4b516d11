/**
 * Bounded readers for files a user hands in (detections JSONL, COCO annotations and results,
 * class names, configs): every read is limited in file size, line length and JSON nesting, and a
 * file past a limit is a DeimError 'ERR_INPUT_TOO_LARGE' naming the input, the line (for lines)
 * and the limit, before the limit's memory is spent. Garbage that is not text (a NUL byte) is
 * 'ERR_INPUT_FORMAT'. Nothing here parses a format: callers check their own fields.
 *
 * @example
 * const json = await readJsonBounded('instances_val2017.json');             // size + depth checked
 * for await (const { text, line } of readLinesBounded('dets.jsonl')) { ... } // line length checked
 */
import { closeSync, createReadStream, openSync, readSync, statSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { DeimError, errorMessage } from '../errors.js';

const MiB = 1024 * 1024;

export const INPUT_LIMITS = {
  /**
   * A whole-file JSON input (annotations, results, class names, configs). V8's longest string is
   * 2^29 - 24 UTF-16 units (about 512 Mi): a larger file cannot be read into one string at all.
   * COCO's largest file (instances_train2017.json) is 448 MB.
   */
  maxJsonBytes: 500 * MiB,
  /** Nesting of arrays and objects in a JSON input (COCO needs 5; deeper nests overflow the stack of recursive code). */
  maxJsonDepth: 64,
  /** One line of a JSON-lines input (10,000 detections of a frame take about 1.5 MB). */
  maxLineBytes: 16 * MiB,
} as const;

export interface BoundedReadOptions {
  /** Overrides of INPUT_LIMITS' file size (bytes). */
  maxBytes?: number;
  /** The name used in messages (default: the path). */
  label?: string;
}

function tooLarge(label: string, message: string): DeimError {
  return new DeimError('ERR_INPUT_TOO_LARGE', `${label}: ${message}`, { input: label });
}

function unreadable(file: string, label: string, e: unknown): DeimError {
  const code = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'ERR_INPUT_NOT_FOUND' : 'ERR_INPUT_UNREADABLE';
  return new DeimError(code, `${label}: cannot read: ${errorMessage(e)}`, { input: file, cause: e });
}

function mib(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(n % MiB === 0 ? 0 : 1)} MiB` : `${n} bytes`;
}

/** The size of a regular file, or the error naming it: missing, a folder, or larger than maxBytes. */
export function checkInputFile(file: string, maxBytes: number, label = file): number {
  let size: number;
  try {
    const st = statSync(file);
    if (st.isDirectory()) throw new DeimError('ERR_INPUT_UNREADABLE', `${label} is a folder, not a file`, { input: file });
    size = st.isFile() ? st.size : 0;
  } catch (e) {
    if (e instanceof DeimError) throw e;
    throw unreadable(file, label, e);
  }
  if (size > maxBytes) throw tooLarge(label, `the file is ${mib(size)}, over the limit of ${mib(maxBytes)} for this input`);
  return size;
}

function decodeChecked(bytes: Buffer, label: string, maxBytes: number): string {
  if (bytes.length > maxBytes) throw tooLarge(label, `the input is over the limit of ${mib(maxBytes)}`);
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw new DeimError('ERR_INPUT_FORMAT', `${label}: binary data (a NUL byte at offset ${nul}), not a text file`, { input: label });
  return bytes.toString('utf8');
}

/** Reads a whole text file, refusing one over maxBytes (default maxJsonBytes) before reading it. */
export function readTextBoundedSync(file: string, options: BoundedReadOptions = {}): string {
  const label = options.label ?? file;
  const maxBytes = options.maxBytes ?? INPUT_LIMITS.maxJsonBytes;
  checkInputFile(file, maxBytes, label);
  // Read at most maxBytes + 1 whatever stat said (a FIFO, a file growing while read).
  const chunks: Buffer[] = [];
  let total = 0;
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw unreadable(file, label, e);
  }
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(Math.min(4 * MiB, maxBytes + 1 - total));
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        throw unreadable(file, label, e);
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (total > maxBytes) throw tooLarge(label, `the input is over the limit of ${mib(maxBytes)}`);
    }
  } finally {
    closeSync(fd);
  }
  return decodeChecked(Buffer.concat(chunks, total), label, maxBytes);
}

/** Async form of readTextBoundedSync (a stream, so a FIFO or a slow disk does not block the loop). */
export async function readTextBounded(file: string, options: BoundedReadOptions = {}): Promise<string> {
  return decodeTextBounded(await readBytesBounded(file, options), options.label ?? file, options.maxBytes);
}

/** The bytes of a whole file, with readTextBounded's checks except the text ones (decodeTextBounded does those). */
export async function readBytesBounded(file: string, options: BoundedReadOptions = {}): Promise<Buffer> {
  const label = options.label ?? file;
  const maxBytes = options.maxBytes ?? INPUT_LIMITS.maxJsonBytes;
  const size = checkInputFile(file, maxBytes, label);
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (e) {
    throw unreadable(file, label, e);
  }
  try {
    // Read into one buffer of the size stat gave (+1, to see a file that grew), grown when short
    // (a FIFO, a growing file), at most maxBytes + 1 in all: no chunks to copy together.
    let buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(size + 1, 64 * 1024)));
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        if (total > maxBytes) throw tooLarge(label, `the input is over the limit of ${mib(maxBytes)}`);
        const bigger = Buffer.allocUnsafe(Math.min(maxBytes + 1, 2 * buf.length));
        buf.copy(bigger, 0, 0, total);
        buf = bigger;
      }
      let n: number;
      try {
        ({ bytesRead: n } = await handle.read(buf, total, buf.length - total, null));
      } catch (e) {
        throw unreadable(file, label, e);
      }
      if (n === 0) break;
      total += n;
    }
    if (total > maxBytes) throw tooLarge(label, `the input is over the limit of ${mib(maxBytes)}`);
    return buf.subarray(0, total);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The text of bytes read by readBytesBounded: a NUL byte is 'ERR_INPUT_FORMAT' (binary data), as in readTextBounded. */
export function decodeTextBounded(bytes: Buffer, label: string, maxBytes: number = INPUT_LIMITS.maxJsonBytes): string {
  return decodeChecked(bytes, label, maxBytes);
}

/**
 * The deepest nesting of arrays and objects in JSON text (brackets inside strings not counted),
 * stopping at the first place deeper than maxDepth: returns that offset, or -1 when within.
 */
function depthExceeded(text: string, maxDepth: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped unit
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > maxDepth) return i;
    } else if (c === 93 || c === 125) depth--;
  }
  return -1;
}

/** JSON.parse with a nesting bound; bad JSON is 'ERR_INPUT_FORMAT' (or `code`) naming the input. */
export function parseJsonBounded(text: string, label: string, options: { maxDepth?: number; code?: 'ERR_INPUT_FORMAT' | 'ERR_EVAL_INPUT' | 'ERR_CLASS_NAMES' | 'ERR_INPUT_UNREADABLE' } = {}): unknown {
  const maxDepth = options.maxDepth ?? INPUT_LIMITS.maxJsonDepth;
  const at = depthExceeded(text, maxDepth);
  if (at >= 0) throw tooLarge(label, `JSON nested deeper than the limit of ${maxDepth} levels (at character ${at})`);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DeimError(options.code ?? 'ERR_INPUT_FORMAT', `${label}: not valid JSON: ${errorMessage(e)}`, { input: label, cause: e });
  }
}

/** Reads and parses a JSON file within INPUT_LIMITS (or the given ones). */
export async function readJsonBounded(file: string, options: BoundedReadOptions & { maxDepth?: number; code?: 'ERR_INPUT_FORMAT' | 'ERR_EVAL_INPUT' } = {}): Promise<unknown> {
  const label = options.label ?? file;
  return parseJsonBounded(await readTextBounded(file, options), label, options);
}

/**
 * The lines of a text file, streamed: memory is bounded by maxLineBytes (default
 * INPUT_LIMITS.maxLineBytes) whatever the file's size. A line longer than that is
 * 'ERR_INPUT_TOO_LARGE' naming the line, found after reading at most maxLineBytes of it; a NUL
 * byte is 'ERR_INPUT_FORMAT' (binary data). `line` is 1-based; a final '\r' is dropped.
 */
export async function* readLinesBounded(file: string, options: BoundedReadOptions & { maxLineBytes?: number } = {}): AsyncGenerator<{ text: string; line: number }> {
  const label = options.label ?? file;
  const maxLine = options.maxLineBytes ?? INPUT_LIMITS.maxLineBytes;
  checkInputFile(file, options.maxBytes ?? Number.MAX_SAFE_INTEGER, label);
  const stream = createReadStream(file, { highWaterMark: MiB });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  const take = (tail: Buffer): string => {
    const all = pending.length === 0 ? tail : Buffer.concat([...pending, tail], pendingBytes + tail.length);
    pending = [];
    pendingBytes = 0;
    let s = all.toString('utf8');
    if (s.endsWith('\r')) s = s.slice(0, -1);
    return s;
  };
  try {
    let iter: AsyncIterator<Buffer>;
    try {
      iter = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    } catch (e) {
      throw unreadable(file, label, e);
    }
    for (;;) {
      let r: IteratorResult<Buffer>;
      try {
        r = await iter.next();
      } catch (e) {
        throw unreadable(file, label, e);
      }
      if (r.done) break;
      let chunk = r.value;
      const nul = chunk.indexOf(0);
      if (nul >= 0) {
        let at = line + 1;
        for (let i = chunk.indexOf(10); i >= 0 && i < nul; i = chunk.indexOf(10, i + 1)) at++;
        throw new DeimError('ERR_INPUT_FORMAT', `${label} line ${at}: binary data (a NUL byte), not a text file`, { input: file });
      }
      for (;;) {
        const nl = chunk.indexOf(10);
        const end = nl < 0 ? chunk.length : nl;
        if (pendingBytes + end > maxLine) {
          throw tooLarge(label, `line ${line + 1} is longer than the limit of ${mib(maxLine)} for one line`);
        }
        if (nl < 0) {
          pending.push(chunk);
          pendingBytes += chunk.length;
          break;
        }
        line++;
        yield { text: take(chunk.subarray(0, nl)), line };
        chunk = chunk.subarray(nl + 1);
      }
    }
    if (pendingBytes > 0) {
      line++;
      yield { text: take(Buffer.alloc(0)), line };
    }
  } finally {
    stream.destroy();
  }
}
