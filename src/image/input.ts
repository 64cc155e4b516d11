/** What the API accepts as an image, its printable name, and why a path cannot be read (no decoder loaded for this). */
import { DeimError, errorMessage } from '../errors.js';
import type { RawImage } from './types.js';

/** What the API accepts as an image. */
export type ImageInput = string | Buffer | Uint8Array | RawImage;

/** A printable name for an input in messages. */
export function describeInput(input: ImageInput): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) return `(buffer of ${input.length} bytes)`;
  return `(raw image ${input?.width}x${input?.height}x${input?.channels})`;
}

/**
 * The error for a file that cannot be looked at or read, from the system's error: a missing file
 * is ERR_INPUT_NOT_FOUND; a symbolic-link loop, a folder that may not be searched, a file that may
 * not be read are ERR_INPUT_UNREADABLE saying so (never "no such file").
 */
export function fileError(file: string, e: unknown): DeimError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new DeimError('ERR_INPUT_NOT_FOUND', `${file}: no such file`, { input: file, cause: e });
  const why: Record<string, string> = {
    ELOOP: 'a symbolic link loop (the link leads back to itself)',
    EACCES: 'permission denied (the file, or a folder on its path, may not be read)',
    EPERM: 'permission denied (the file, or a folder on its path, may not be read)',
    ENOTDIR: 'no such file (a part of the path is not a folder)',
    ENAMETOOLONG: 'the name is too long for the file system',
    EISDIR: 'is a directory, not an image',
    EIO: 'input/output error reading the file',
  };
  return new DeimError('ERR_INPUT_UNREADABLE', `${file}: ${(code !== undefined && why[code]) || errorMessage(e)}`, { input: file, cause: e });
}
