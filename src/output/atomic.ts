/**
 * Atomic outputs: a file is written under a temporary name in its own folder and renamed onto its
 * name only when it is complete, so a crash, Ctrl-C or full disk never leaves a truncated or empty
 * file under the final name. Temporary files are removed on failure, and any still there when the
 * process exits (a second Ctrl-C) are removed then.
 *
 * Devices and pipes (/dev/null, /dev/stdout, FIFOs) are written in place; a symbolic link is
 * followed, so the file it points to is replaced and the link stays.
 *
 * @example
 * await writeFileAtomic('results.json', JSON.stringify(doc));
 * const mp4 = new AtomicFile('annotated.mp4'); // ffmpeg writes mp4.path
 * await mp4.commit();                           // or mp4.discard()
 */
import { lstatSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
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
function destination(target: string): { final: string; inPlace: boolean } {
  try {
    if (!statSync(target).isFile()) return { final: target, inPlace: true };
    return { final: lstatSync(target).isSymbolicLink() ? realpathSync(target) : target, inPlace: false };
  } catch {
    return { final: target, inPlace: false };
  }
}

/** Writes `data` to `target` atomically; on failure the target is as it was and no temporary file is left. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const { final, inPlace } = destination(target);
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
  const { final, inPlace } = destination(target);
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
