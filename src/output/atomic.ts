/**
 * Atomic outputs: a file is written under a temporary name in its own folder and renamed onto its
 * name only when it is complete, so a crash, Ctrl-C or full disk never leaves a truncated or empty
 * file under the final name. Temporary files are removed on failure, and any still there when the
 * process exits (a second Ctrl-C) are removed then.
 *
 * Devices and pipes (/dev/null, /dev/stdout, FIFOs) are written in place; a symbolic link is
 * followed, so the file it points to is replaced and the link stays. A FIFO is opened without
 * blocking: one that no process opens for reading within FIFO_READER_WAIT_MS is an error, never a
 * run that cannot end, and Ctrl-C still works while a slow reader takes the data.
 *
 * @example
 * await writeFileAtomic('results.json', JSON.stringify(doc));
 * const mp4 = new AtomicFile('annotated.mp4'); // ffmpeg writes mp4.path
 * await mp4.commit();                           // or mp4.discard()
 */
import { closeSync, constants, lstatSync, openSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const pending = new Set<string>();
/** Writes of writeFileAtomic under way (the quit path lets them settle before it cleans up). */
const inFlight = new Set<Promise<unknown>>();
let stopped = false;
let exitHook = false;

function track(temp: string): void {
  pending.add(temp);
  if (!exitHook) {
    exitHook = true;
    process.on('exit', removeTemporaryFiles);
  }
}

/** Removes every temporary file not yet renamed into place (runs by itself at process exit). */
export function removeTemporaryFiles(): void {
  for (const temp of pending) {
    try {
      rmSync(temp, { force: true });
    } catch {
      // Nothing more can be done at exit.
    }
  }
  pending.clear();
}

/**
 * For a quick exit: no new atomic write starts, and the ones under way get up to `ms` to settle
 * (a write's open() runs on a libuv thread, so a temporary file removed now could be created just
 * after). Then removeTemporaryFiles() leaves nothing behind.
 */
export async function settleWrites(ms: number): Promise<void> {
  stopped = true;
  if (inFlight.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.allSettled([...inFlight]), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

let counter = 0;

/** A hidden name beside `target`, unique to this process and call: `.name.<pid>-<n>.partial`. */
export function temporaryPathFor(target: string): string {
  let base = path.basename(target);
  // Stay under NAME_MAX (255 bytes) whatever the target's name.
  while (Buffer.byteLength(base) > 200) base = base.slice(0, Math.floor(base.length / 2));
  return path.join(path.dirname(target), `.${base}.${process.pid}-${++counter}.partial`);
}

/** Where the bytes go: the file itself, the file a symlink names, or in place for a device or pipe. */
function destination(target: string): { final: string; inPlace: boolean; fifo?: boolean } {
  try {
    const st = statSync(target);
    if (st.isFIFO()) return { final: target, inPlace: true, fifo: true };
    if (!st.isFile()) return { final: target, inPlace: true };
    return { final: lstatSync(target).isSymbolicLink() ? realpathSync(target) : target, inPlace: false };
  } catch {
    return { final: target, inPlace: false };
  }
}

/** How long a write to a FIFO waits for a process to open it for reading. */
export const FIFO_READER_WAIT_MS = 10_000;

function noReader(target: string, e: unknown, waitedMs: number): Error {
  if ((e as NodeJS.ErrnoException).code !== 'ENXIO') return e as Error;
  const waited = waitedMs > 0 ? ` within ${waitedMs / 1000} s` : '';
  return Object.assign(new Error(`${target} is a FIFO (named pipe) that no process opened for reading${waited}; nothing was written`), { code: 'ENXIO', cause: e });
}

/**
 * Writes into a FIFO opened without blocking: a reader is waited for up to FIFO_READER_WAIT_MS and
 * a full pipe for as long as the reader takes, on timers, so signals (Ctrl-C) still run.
 */
async function writeFifo(target: string, data: string | Uint8Array): Promise<void> {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let handle;
  for (const started = Date.now(); ; ) {
    try {
      handle = await open(target, constants.O_WRONLY | constants.O_NONBLOCK);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO' || Date.now() - started >= FIFO_READER_WAIT_MS) throw noReader(target, e, FIFO_READER_WAIT_MS);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  try {
    for (let done = 0; done < bytes.length; ) {
      try {
        done += (await handle.write(bytes, done, bytes.length - done)).bytesWritten;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  } finally {
    await handle.close();
  }
}

/** writeFifo, synchronously (for exit paths): a reader that takes nothing for 2 s is given up on. */
function writeFifoSync(target: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let fd: number;
  try {
    fd = openSync(target, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw noReader(target, e, 0);
  }
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  try {
    let stalled = 0;
    for (let done = 0; done < bytes.length; ) {
      try {
        done += writeSync(fd, bytes, done, bytes.length - done);
        stalled = 0;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || (stalled += 10) > 2000) throw e;
        Atomics.wait(sleeper, 0, 0, 10);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `target` atomically; on failure the target is as it was and no temporary file is left. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const { final, inPlace, fifo } = destination(target);
  if (fifo) return writeFifo(final, data);
  if (inPlace) return writeFile(final, data);
  if (stopped) throw new Error(`not written: the process is quitting (${target})`);
  const temp = temporaryPathFor(final);
  track(temp);
  const write = (async () => {
    try {
      await writeFile(temp, data, { flag: 'wx' });
      await rename(temp, final);
    } catch (e) {
      await rm(temp, { force: true }).catch(() => undefined);
      throw e;
    } finally {
      pending.delete(temp);
    }
  })();
  inFlight.add(write);
  try {
    await write;
  } finally {
    inFlight.delete(write);
  }
}

/** writeFileAtomic, synchronously (for exit paths). */
export function writeFileAtomicSync(target: string, data: string | Uint8Array): void {
  const { final, inPlace, fifo } = destination(target);
  if (fifo) return writeFifoSync(final, data);
  if (inPlace) return writeFileSync(final, data);
  const temp = temporaryPathFor(final);
  track(temp);
  try {
    writeFileSync(temp, data, { flag: 'wx' });
    renameSync(temp, final);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  } finally {
    pending.delete(temp);
  }
}

/**
 * A file built over time (by a stream, or by another process such as ffmpeg) at `path`, a
 * temporary name beside `target`. `commit` renames it onto `target`; `discard` removes it; left
 * open, it is removed when the process exits, unless `release` handed it to someone else.
 */
export class AtomicFile {
  /** Where to write now. */
  readonly path: string;
  /** The final file (a symlink's target is followed). */
  readonly final: string;
  private done = false;

  constructor(readonly target: string) {
    const { final, inPlace } = destination(target);
    this.final = final;
    this.path = inPlace ? final : temporaryPathFor(final);
    if (this.path !== this.final) track(this.path);
  }

  /** Renames the finished file into place. */
  async commit(): Promise<void> {
    if (this.done) return;
    this.done = true;
    pending.delete(this.path);
    if (this.path === this.final) return;
    try {
      await rename(this.path, this.final);
    } catch (e) {
      await rm(this.path, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  /** commit, synchronously (for exit paths). */
  commitSync(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this.path);
    if (this.path === this.final) return;
    try {
      renameSync(this.path, this.final);
    } catch (e) {
      rmSync(this.path, { force: true });
      throw e;
    }
  }

  /** Removes the temporary file; the target is left as it was. */
  discard(): void {
    if (this.done) return;
    this.done = true;
    pending.delete(this.path);
    if (this.path !== this.final) rmSync(this.path, { force: true });
  }

  /** Stops tracking the file: it is not removed at exit (another process finishes it). */
  release(): void {
    pending.delete(this.path);
  }
}
