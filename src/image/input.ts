/** What the API accepts as an image, and its printable name (no decoder loaded for this). */
import type { RawImage } from './types.js';

/** What the API accepts as an image. */
export type ImageInput = string | Buffer | Uint8Array | RawImage;

/** A printable name for an input in messages. */
export function describeInput(input: ImageInput): string {
  if (typeof input === 'string') return input;
  if (input instanceof Uint8Array) return `(buffer of ${input.length} bytes)`;
  return `(raw image ${input?.width}x${input?.height}x${input?.channels})`;
}
