/**
 * The output plan of a run: before any model loads, every path the run will write is resolved
 * (real path of its folder, device + inode where the file exists, so hard links and symlinked
 * folders are seen through) and compared with every input and every other output. A clash, or a
 * target that cannot be written, is one DeimError naming the paths, and nothing has been written.
 * Once the plan holds, the folders the outputs need are created.
 *
 * Every command that writes files goes through here; later kinds of output (MOT or track files)
 * register with their own `kind` and are checked the same way.
 *
 * @example
 * planOutputs({
 *   inputs: ['clip.mp4'],
 *   outputs: [{ path: 'out/annotated.mp4', kind: 'video', flag: '--out' }, { path: 'clip.jsonl', kind: 'jsonl', flag: '--json' }],
 * }); // creates out/, or throws ERR_OUTPUT_CLASH / ERR_OUTPUT_WRITE
 */
import { accessSync, constants, lstatSync, mkdirSync, realpathSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import { DeimError, errorMessage } from '../errors.js';
import { printable } from './printable.js';

/** What a planned output holds; `folder` is a directory the run writes files into. */
export type OutputKind = 'image' | 'json' | 'jsonl' | 'video' | 'eval-results' | 'folder' | (string & {});

export interface OutputRequest {
  path: string;
  kind: OutputKind;
  /** The option that named it (for messages), e.g. "--json". */
  flag?: string;
}

export interface OutputPlanRequest {
  /** Files the run reads (images, videos, annotations, results to score). URLs, "-" and patterns are passed over. */
  inputs: readonly string[];
  outputs: readonly OutputRequest[];
}

export interface PlannedOutput extends OutputRequest {
  /** Absolute path with every existing folder's symlinks resolved. */
  resolved: string;
  /** The file exists now (it will be replaced). */
  exists: boolean;
}

interface Identity {
  /** Real path (of the file, or of its nearest existing folder plus the rest). */
  real: string;
  /** "dev:ino" when the path exists. */
  inode?: string;
  stats?: Stats;
}

/** Not a local file path: stdout, URLs, ffmpeg patterns and protocols. */
function isLocalPath(p: string): boolean {
  return p !== '' && p !== '-' && !/^[a-z][a-z0-9+.-]*:/i.test(p) && !/%0?\d*d/.test(p);
}

/** Folder facts asked once per plan (thousands of outputs share a few folders). */
let memo: Map<string, unknown> | undefined;
function cached<T>(key: string, compute: () => T): T {
  if (!memo) return compute();
  if (memo.has(key)) {
    const hit = memo.get(key) as { value: T } | { error: unknown };
    if ('error' in hit) throw hit.error;
    return hit.value;
  }
  try {
    const value = compute();
    memo.set(key, { value });
    return value;
  } catch (error) {
    memo.set(key, { error });
    throw error;
  }
}

function identify(p: string): Identity {
  const absolute = path.resolve(p);
  let stats: Stats | undefined;
  try {
    stats = statSync(absolute, { throwIfNoEntry: false });
  } catch {
    stats = undefined; // ENOTDIR (a file on the way), EACCES: treated as missing here, reported by checkTarget
  }
  if (stats) {
    let real = absolute;
    try {
      real = realpathSync.native(absolute);
    } catch {
      // /dev/stdout on a pipe or socket leads to "pipe:[n]", which has no path: the inode still identifies it.
    }
    return { real, inode: `${stats.dev}:${stats.ino}`, stats };
  }
  // Missing: the real path of the nearest existing folder, plus the rest of the path.
  const rest: string[] = [];
  for (let current = absolute; ; ) {
    const parent = path.dirname(current);
    rest.unshift(path.basename(current));
    if (parent === current) return { real: absolute };
    try {
      return { real: path.join(cached(`real:${parent}`, () => realpathSync.native(parent)), ...rest) };
    } catch {
      current = parent;
    }
  }
}

function name(o: OutputRequest): string {
  return `${o.flag ? `${o.flag} ` : ''}${printable(o.path)}`;
}

/** The nearest existing ancestor of an absolute path. */
function existingAncestor(absolute: string): { dir: string; stats: Stats } {
  for (let current = path.dirname(absolute); ; current = path.dirname(current)) {
    try {
      return { dir: current, stats: statSync(current) };
    } catch {
      if (path.dirname(current) === current) throw new Error(`no existing folder above ${absolute}`);
    }
  }
}

function unwritable(o: OutputRequest, why: string): DeimError {
  return new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${name(o)}: ${why}; nothing was written`, { input: o.path });
}

function canWrite(p: string): boolean {
  try {
    accessSync(p, constants.W_OK | (statSync(p).isDirectory() ? constants.X_OK : 0));
    return true;
  } catch {
    return false;
  }
}

/** Checks one output's target (not its clashes): what exists there, and whether its folder can be made and written. */
function checkTarget(o: OutputRequest, id: Identity): void {
  const absolute = path.resolve(o.path);
  const folder = o.kind === 'folder';
  if (id.stats) {
    if (folder) {
      if (!id.stats.isDirectory()) throw unwritable(o, 'it exists and is not a folder');
      if (!canWrite(absolute)) throw unwritable(o, 'the folder is read-only');
      return;
    }
    if (id.stats.isDirectory()) throw unwritable(o, 'it is a folder; give a file name');
    // Devices and pipes (/dev/null, /dev/stdout, a FIFO) are written in place.
    if (!id.stats.isFile()) return;
    if (!canWrite(absolute)) throw unwritable(o, 'the file is read-only');
    if (!cached(`write:${path.dirname(id.real)}`, () => canWrite(path.dirname(id.real)))) throw unwritable(o, `its folder ${printable(path.dirname(o.path) || '.')} is read-only`);
    return;
  }
  let ancestor;
  try {
    const below = folder ? path.join(absolute, 'x') : absolute;
    ancestor = cached(`ancestor:${path.dirname(below)}`, () => existingAncestor(below));
  } catch (e) {
    throw unwritable(o, errorMessage(e));
  }
  // A dangling symlink on the way would make mkdir fail later.
  if (!ancestor.stats.isDirectory()) throw unwritable(o, `${printable(ancestor.dir)} is not a folder`);
  if (!cached(`write:${ancestor.dir}`, () => canWrite(ancestor.dir))) throw unwritable(o, `the folder ${printable(ancestor.dir)} is read-only`);
  let link;
  try {
    link = lstatSync(absolute, { throwIfNoEntry: false });
  } catch {
    link = undefined;
  }
  if (link?.isSymbolicLink()) {
    let loop = false;
    try {
      statSync(absolute);
    } catch (e) {
      loop = (e as NodeJS.ErrnoException).code === 'ELOOP';
    }
    throw unwritable(o, loop ? 'it is a symbolic link loop (the link leads back to itself)' : 'it is a symbolic link to a missing file');
  }
}

/**
 * Checks a run's outputs against its inputs and each other, and that each can be written;
 * changes nothing. Throws ERR_OUTPUT_CLASH (an output is an input or another output) or
 * ERR_OUTPUT_WRITE (a target that cannot be written), both naming the paths.
 */
export function checkOutputs(request: OutputPlanRequest): PlannedOutput[] {
  memo = new Map();
  try {
    return check(request);
  } finally {
    memo = undefined;
  }
}

function check(request: OutputPlanRequest): PlannedOutput[] {
  // Inputs by real path and by inode (a missing input cannot be overwritten: it is left out).
  const inputs = new Map<string, { path: string; id: Identity }>();
  for (const p of request.inputs) {
    if (!isLocalPath(p)) continue;
    const id = identify(p);
    if (!id.stats) continue;
    inputs.set(id.real, { path: p, id });
    inputs.set(id.inode!, { path: p, id });
  }
  const seen = new Map<string, OutputRequest>();
  const planned: PlannedOutput[] = [];
  for (const output of request.outputs) {
    if (!isLocalPath(output.path)) continue;
    const id = identify(output.path);
    const keys = id.inode ? [id.real, id.inode] : [id.real];
    const input = output.kind === 'folder' ? undefined : keys.map((k) => inputs.get(k)).find(Boolean);
    if (input) {
      const through =
        path.resolve(input.path) === path.resolve(output.path) ? ''
        : input.id.real === id.real ? ` (through a symbolic link: both are ${printable(id.real)})`
        : ' (a hard link to the same file)';
      throw new DeimError('ERR_OUTPUT_CLASH', `${name(output)} would overwrite the input ${printable(input.path)}${through}; choose another output; nothing was written`, { input: output.path });
    }
    const other = keys.map((k) => seen.get(k)).find(Boolean);
    if (other) {
      throw new DeimError('ERR_OUTPUT_CLASH', `${name(output)} and ${name(other)} are the same file; give each output its own name; nothing was written`, { input: output.path });
    }
    checkTarget(output, id);
    for (const k of keys) seen.set(k, output);
    planned.push({ ...output, resolved: id.real, exists: id.stats !== undefined });
  }
  return planned;
}

/**
 * checkOutputs, then creates the folders the outputs need (`folder` outputs themselves, the
 * parents of the others). Call it before loading a model: a run that cannot keep its results
 * should fail at once.
 */
export function planOutputs(request: OutputPlanRequest): PlannedOutput[] {
  const planned = checkOutputs(request);
  const made = new Set<string>();
  for (const o of planned) {
    const dir = o.kind === 'folder' ? o.resolved : path.dirname(o.resolved);
    if (made.has(dir)) continue;
    made.add(dir);
    try {
      ensureDirectorySync(dir);
    } catch (e) {
      throw unwritable(o, `cannot create the folder ${printable(dir)}: ${errorMessage(e)}`);
    }
  }
  return planned;
}

/**
 * `mkdir -p`, one level at a time (fs.mkdir's `recursive` loops forever on Node 20 when mkdir fails
 * with ENOENT under an existing parent, as for any new path in /proc).
 */
export function ensureDirectorySync(directory: string): void {
  const missing: string[] = [];
  for (let current = path.resolve(directory); ; ) {
    try {
      if (statSync(current).isDirectory()) break;
      throw new Error(`${current} exists and is not a folder`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    missing.push(current);
    const parent = path.dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      mkdirSync(missing[i]!);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }
}
