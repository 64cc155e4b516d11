/**
 * Expands the command line's inputs (files, folders, globs) into a list of image files, keeping
 * the order given. An input that matches nothing becomes a failure to report, not an abort.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { DeimError } from '../errors.js';

export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'tif', 'tiff', 'gif', 'avif', 'heic', 'heif', 'bmp', 'jp2', 'jxl'] as const;
const IMAGE_EXT_RE = new RegExp(`\\.(${IMAGE_EXTENSIONS.join('|')})$`, 'i');

export function isImagePath(p: string): boolean {
  return IMAGE_EXT_RE.test(p);
}

export interface ExpandedInputs {
  files: string[];
  /** Inputs that matched nothing, with why. */
  problems: DeimError[];
}

export async function expandInputs(inputs: readonly string[], options: { recursive?: boolean } = {}): Promise<ExpandedInputs> {
  const files: string[] = [];
  const problems: DeimError[] = [];
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
      // A file, or a missing path: the detector reports a missing file per input.
      add(input);
    }
  }
  return { files, problems };
}
