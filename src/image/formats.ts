/**
 * Which encoded images deimv2 decodes, decided from the bytes (never from the file name), and how
 * long one decode may take. Vector and document formats (SVG, PDF) are refused: a 195-byte SVG can
 * ask the renderer for minutes of work and gigabytes of memory, and rendering one is not what a
 * photo detector is for. Everything here is pure policy; src/image/decode.ts applies it.
 */
import { DeimError } from '../errors.js';

/** sharp's `metadata().format` names that are decoded, with the name used in messages. */
export const ACCEPTED_FORMATS: Readonly<Record<string, string>> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  gif: 'GIF',
  tiff: 'TIFF',
  heif: 'AVIF/HEIF',
};

/** The accepted formats as one phrase for messages. */
export const ACCEPTED_FORMAT_LIST = 'JPEG, PNG, WebP, GIF, TIFF, AVIF/HEIF';

/** Seconds one decode may take before it is stopped (sharp's timeout; whole seconds). */
export const DECODE_TIMEOUT_SECONDS = 60;

/**
 * A best-effort name for bytes sharp does not decode or that are refused, for messages only
 * (the decision itself is made from sharp's metadata).
 */
export function sniffFormat(bytes: Uint8Array): string | undefined {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 512));
  const ascii = head.toString('latin1');
  if (ascii.startsWith('%PDF')) return 'PDF';
  if (ascii.startsWith('BM') && head.length >= 26) return 'BMP';
  if (/^(?:\uFEFF|\xEF\xBB\xBF)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--[\s\S]*?-->\s*)*(?:<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(ascii)) return 'SVG';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip (or SVGZ)';
  if (ascii.startsWith('%!PS')) return 'PostScript';
  if (ascii.startsWith('\x00\x00\x00\x0cjP  ') || ascii.startsWith('\xff\x4f\xff\x51')) return 'JPEG 2000';
  if (ascii.startsWith('\xff\x0a') || ascii.startsWith('\x00\x00\x00\x0cJXL ')) return 'JPEG XL';
  if (ascii.startsWith('SIMPLE  =')) return 'FITS';
  if (/^P[1-7]\s/.test(ascii)) return 'PNM';
  if (ascii.startsWith('\x00\x00\x01\x00')) return 'ICO';
  if (ascii.startsWith('8BPS')) return 'PSD';
  return undefined;
}

/** The refusal of an image whose format sharp recognised but deimv2 does not accept. */
export function formatRefused(name: string, format: string | undefined): DeimError {
  const what = format ? `${formatLabel(format)} image` : 'image of unknown format';
  return new DeimError(
    'ERR_INPUT_FORMAT',
    `${name}: ${what} refused: deimv2 decodes ${ACCEPTED_FORMAT_LIST} only (the format comes from the content, not the file name)`,
    { input: name },
  );
}

/**
 * Bytes sharp does not recognise: a known file type that is not accepted (PDF, BMP...) is
 * ERR_INPUT_FORMAT; anything else is not an image at all, ERR_INPUT_UNREADABLE.
 */
export function formatUnknown(name: string, bytes: Uint8Array, cause?: unknown): DeimError {
  const sniffed = sniffFormat(bytes);
  if (sniffed) {
    return new DeimError('ERR_INPUT_FORMAT', `${name}: ${sniffed} file refused: deimv2 decodes ${ACCEPTED_FORMAT_LIST} only`, { input: name, cause });
  }
  return new DeimError('ERR_INPUT_UNREADABLE', `${name}: not an image in a format deimv2 decodes (${ACCEPTED_FORMAT_LIST})`, { input: name, cause });
}

/** True when sharp's error says the decode ran past its time limit. */
export function isTimeoutMessage(message: string): boolean {
  return /^timeout: \d+% complete/m.test(message);
}

export function decodeTimedOut(name: string, seconds: number, cause?: unknown): DeimError {
  return new DeimError('ERR_INPUT_TIMEOUT', `${name}: decoding took longer than ${seconds} s and was stopped`, { input: name, cause });
}

function formatLabel(format: string): string {
  return ACCEPTED_FORMATS[format] ?? (format.length <= 4 ? format.toUpperCase() : format);
}
