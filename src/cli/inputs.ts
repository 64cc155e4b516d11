/**
 * Expands the command line's inputs (files, folders, globs, http(s) image URLs) into a list of
 * image files, keeping the order given. An input that matches nothing becomes a failure to
 * report, not an abort; a named file that is missing or is not a regular file is found here,
 * before any model loads. In a folder, an entry with an image name that is not a regular file (a
 * FIFO, a socket, a device, a broken link) is named as a failure, and a link back to a folder
 * being searched (a loop) is named and not followed.
 */
import { readdirSync, realpathSync, statSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import type { DetectorOptions } from '../detector.js';
import { DeimError, errorMessage } from '../errors.js';
import { isImageUrl, looksLikeUrl, schemeRefused, urlFileName, urlTimeoutSeconds } from '../image/fetch.js';
import { fileError } from '../image/input.js';
import { resolveModel } from '../models/resolve.js';

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'tif', 'tiff', 'gif', 'avif', 'heic', 'heif', 'bmp', 'jp2', 'jxl'] as const;
const IMAGE_EXT_RE = new RegExp(`\\.(${IMAGE_EXTENSIONS.join('|')})$`, 'i');

/** True for a name with an image extension (for an http(s) URL, the name its path ends with). */
export function isImagePath(p: string): boolean {
  return IMAGE_EXT_RE.test(isImageUrl(p) ? urlFileName(p) : p);
}

export interface ExpandedInputs {
  files: string[];
  /** Inputs that matched nothing, and folders that cannot be listed, with why. */
  problems: DeimError[];
  /** Said, not failed: symbolic links that lead back into a folder being searched (not followed). */
  notes: string[];
  /** Files of `files` that cannot be read (missing, not a regular file), with why: report them, do not run them. */
  unreadable: Map<string, DeimError>;
}

/** "a character device", "a FIFO", ... for a file that is not a regular file or a folder. */
export function fileKind(st: Stats): string {
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a folder';
  return 'not a regular file';
}

/**
 * Why a named input file cannot be read as an image file, or undefined when it can be tried;
 * `statError` is why stat() failed when it did (a loop or a permission is not "no such file").
 */
export function inputFileProblem(file: string, st: Stats | undefined, statError?: unknown): DeimError | undefined {
  if (!st) return statError !== undefined ? fileError(file, statError) : new DeimError('ERR_INPUT_NOT_FOUND', `${file}: no such file`, { input: file });
  if (!st.isFile()) return new DeimError('ERR_INPUT_UNREADABLE', `${file}: not a regular file (${fileKind(st)}); give an image file`, { input: file });
  return undefined;
}

export async function expandInputs(inputs: readonly string[], options: { recursive?: boolean } = {}): Promise<ExpandedInputs> {
  const files: string[] = [];
  const problems: DeimError[] = [];
  const notes: string[] = [];
  const unreadable = new Map<string, DeimError>();
  const seen = new Set<string>();
  const add = (f: string) => {
    if (!seen.has(f)) {
      seen.add(f);
      files.push(f);
    }
  };
  for (const input of inputs) {
    let st;
    let statError: unknown;
    try {
      st = statSync(input);
    } catch (e) {
      statError = e;
    }
    if (st?.isDirectory()) {
      const before = problems.length;
      const found = listFolder(input, options.recursive === true ? Infinity : 0, problems, notes);
      if (found.length === 0 && problems.length === before) {
        problems.push(new DeimError('ERR_NO_IMAGES', `${input}: folder holds no images (${IMAGE_EXTENSIONS.join(', ')})`, { input }));
      }
      for (const { file, problem } of found) {
        add(file);
        if (problem) unreadable.set(file, problem);
      }
    } else if (!st && looksLikeUrl(input)) {
      // Fetched when it runs (src/image/fetch.ts); a scheme deimv2 does not fetch is said now.
      add(input);
      if (!isImageUrl(input)) unreadable.set(input, schemeRefused(input));
    } else if (!st && (await import('tinyglobby')).isDynamicPattern(input)) {
      // Expanded by the folder walk, so a glob names FIFOs and skips link loops as a folder does
      // (tinyglobby left FIFOs out silently and walked a link to / whole).
      const before = problems.length;
      const found = expandPattern(input, problems, notes);
      if (found.length === 0 && problems.length === before) problems.push(new DeimError('ERR_NO_IMAGES', `${input}: pattern matches no images`, { input }));
      for (const { file, problem } of found) {
        add(file);
        if (problem) unreadable.set(file, problem);
      }
    } else {
      // A file, or a missing path: reported now, and as this file's failure in the results.
      add(input);
      const problem = inputFileProblem(input, st, statError);
      if (problem) unreadable.set(input, problem);
    }
  }
  // A bad DEIMV2_URL_TIMEOUT is said once, before anything runs (not as every URL's failure).
  if (files.some(isImageUrl)) urlTimeoutSeconds();
  return { files, problems, notes, unreadable };
}

/** True when `inner` is `outer` or inside it (both real paths). */
function isInside(inner: string, outer: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * The image files a glob pattern names: the folder its literal leading part names is walked as a
 * folder is (./listFolder), as deep as the pattern can reach, and each path inside it is matched
 * against the rest of the pattern (*, ?, [...], {a,b}, and ** for any number of folders; case
 * does not matter; hidden names are not matched).
 */
function expandPattern(pattern: string, problems: DeimError[], notes: string[]): FolderEntry[] {
  const parts = pattern.split(/[\\/]/);
  const magic = /[*?[\]{}()!+@]/;
  let literal = 0;
  while (literal < parts.length - 1 && !magic.test(parts[literal]!)) literal++;
  const baseParts = parts.slice(0, literal);
  const base = baseParts.length === 0 ? '.' : baseParts.join('/') || '/';
  const rest = parts.slice(literal);
  const depth = rest.includes('**') ? Infinity : rest.length - 1;
  let st: Stats | undefined;
  try {
    st = statSync(base);
  } catch {
    return [];
  }
  if (!st.isDirectory()) return [];
  const re = globRegExp(rest.join('/'));
  return listFolder(base, depth, problems, notes)
    .filter((e) => re.test(path.relative(base, e.file).split(path.sep).join('/')))
    .map((e) => (baseParts.length === 0 ? { ...e, file: path.relative('.', e.file) } : e));
}

/** A glob (the part after its literal folder) as a regular expression over '/'-separated paths. */
export function globRegExp(glob: string): RegExp {
  let re = '';
  let braces = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*' && (i === 0 || glob[i - 1] === '/') && (glob[i + 2] === '/' || i + 2 === glob.length)) {
      re += glob[i + 2] === '/' ? '(?:[^/]+/)*' : '.*';
      i += 2;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = glob.slice(i + 1, end);
        re += `[${body[0] === '!' || body[0] === '^' ? '^' + body.slice(1).replace(/[\\\]]/g, '\\$&') : body.replace(/[\\\]]/g, '\\$&')}]`;
        i = end;
      }
    } else if (c === '{') {
      braces++;
      re += '(?:';
    } else if (c === '}' && braces > 0) {
      braces--;
      re += ')';
    } else if (c === ',' && braces > 0) re += '|';
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'i');
}

/** One image file of a folder, and why it cannot be read when it cannot. */
interface FolderEntry {
  file: string;
  problem?: DeimError;
}

/**
 * The image files of a folder (and of its subfolders `depth` levels down), sorted by their path
 * inside it, hidden names left out. Links are followed, except one to a folder the search is
 * already inside or to one that holds the link (a loop: said in `notes`); an entry with an image name that is not a regular
 * file, or cannot be looked at, comes back with its problem so the run names it.
 */
function listFolder(root: string, depth: number, problems: DeimError[], notes: string[]): FolderEntry[] {
  const found: Array<FolderEntry & { rel: string }> = [];
  const walk = (rel: string, ancestors: readonly string[]) => {
    const dir = rel === '' ? root : path.join(root, rel);
    let entries: Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch (e) {
      problems.push(new DeimError('ERR_INPUT_UNREADABLE', `${dir}: cannot list the folder: ${errorMessage(e)}`, { input: dir }));
      return;
    }
    for (const entry of entries) {
      const name = entry.name;
      if (name.startsWith('.')) continue;
      const childRel = rel === '' ? name : `${rel}/${name}`;
      const file = path.join(root, childRel);
      let st: Stats | undefined;
      let statError: unknown;
      try {
        st = statSync(file);
      } catch (e) {
        statError = e;
      }
      if (st?.isDirectory()) {
        if (ancestors.length > depth) continue;
        let real: string;
        try {
          real = realpathSync(file);
        } catch {
          continue;
        }
        // A loop: the link leads to a folder the search is inside, or to one that holds the link.
        if (ancestors.includes(real) || isInside(ancestors[ancestors.length - 1]!, real)) {
          notes.push(`${file}: symbolic link loop (it leads back to ${real}, already being searched); not followed`);
          continue;
        }
        walk(childRel, [...ancestors, real]);
        continue;
      }
      if (!isImagePath(name)) continue;
      if (st?.isFile()) {
        found.push({ rel: childRel, file });
        continue;
      }
      const code = (statError as NodeJS.ErrnoException | undefined)?.code;
      const problem = st
        ? new DeimError('ERR_INPUT_UNREADABLE', `${file}: not a regular file (${fileKind(st)}); left out`, { input: file })
        : code === 'ENOENT' && entry.isSymbolicLink()
          ? new DeimError('ERR_INPUT_UNREADABLE', `${file}: a symbolic link to nothing (its target is missing)`, { input: file })
          : fileError(file, statError);
      found.push({ rel: childRel, file, problem });
    }
  };
  let rootReal: string;
  try {
    rootReal = realpathSync(root);
  } catch {
    rootReal = path.resolve(root);
  }
  walk('', [rootReal]);
  return found.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0)).map(({ file, problem }) => (problem ? { file, problem } : { file }));
}

/** Files a detector reads (the model file a variant name resolves to, class names, engine): no output may replace them either. */
export function detectorInputs(o: DetectorOptions): string[] {
  let model: string | undefined;
  try {
    model = resolveModel(o.model ?? 'atto', o.modelDir !== undefined ? { modelDir: o.modelDir } : {}).path;
  } catch {
    model = o.model; // reported when the detector is created
  }
  return [model, typeof o.classNames === 'string' ? o.classNames : undefined, o.engine].filter((p): p is string => typeof p === 'string');
}
