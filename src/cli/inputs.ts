/**
 * Expands the command line's inputs (files, folders, globs) into a list of image files, keeping
 * the order given. An input that matches nothing becomes a failure to report, not an abort; a
 * named file that is missing or is not a regular file is found here, before any model loads.
 */
import { statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { DetectorOptions } from '../detector.js';
import { DeimError } from '../errors.js';
import { resolveModel } from '../models/resolve.js';

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'tif', 'tiff', 'gif', 'avif', 'heic', 'heif', 'bmp', 'jp2', 'jxl'] as const;
const IMAGE_EXT_RE = new RegExp(`\\.(${IMAGE_EXTENSIONS.join('|')})$`, 'i');

export function isImagePath(p: string): boolean {
  return IMAGE_EXT_RE.test(p);
}

export interface ExpandedInputs {
  files: string[];
  /** Inputs that matched nothing, with why. */
  problems: DeimError[];
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

/** Why a named input file cannot be read as an image file, or undefined when it can be tried. */
export function inputFileProblem(file: string, st: Stats | undefined): DeimError | undefined {
  if (!st) return new DeimError('ERR_INPUT_NOT_FOUND', `${file}: no such file`, { input: file });
  if (!st.isFile()) return new DeimError('ERR_INPUT_UNREADABLE', `${file}: not a regular file (${fileKind(st)}); give an image file`, { input: file });
  return undefined;
}

export async function expandInputs(inputs: readonly string[], options: { recursive?: boolean } = {}): Promise<ExpandedInputs> {
  const files: string[] = [];
  const problems: DeimError[] = [];
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
    try {
      st = statSync(input);
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) {
      const pattern = options.recursive ? '**/*' : '*';
      const { glob } = await import('tinyglobby');
      const found = (await glob(pattern, { cwd: input, onlyFiles: true, caseSensitiveMatch: false, expandDirectories: false }))
        .filter(isImagePath)
        .sort()
        .map((f) => path.join(input, f));
      if (found.length === 0) problems.push(new DeimError('ERR_NO_IMAGES', `${input}: folder holds no images (${IMAGE_EXTENSIONS.join(', ')})`, { input }));
      found.forEach(add);
    } else if (!st && (await import('tinyglobby')).isDynamicPattern(input)) {
      const { glob } = await import('tinyglobby');
      const found = (await glob(input, { onlyFiles: true, caseSensitiveMatch: false, expandDirectories: false })).filter(isImagePath).sort();
      if (found.length === 0) problems.push(new DeimError('ERR_NO_IMAGES', `${input}: pattern matches no images`, { input }));
      found.forEach(add);
    } else {
      // A file, or a missing path: reported now, and as this file's failure in the results.
      add(input);
      const problem = inputFileProblem(input, st);
      if (problem) unreadable.set(input, problem);
    }
  }
  return { files, problems, unreadable };
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
