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

const HEIF_BRANDS = new Set(['avif', 'avis', 'heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'mif2', 'msf1']);

/**
 * The accepted format the bytes start with, as sharp's metadata names it ('jpeg', 'png', 'webp',
 * 'gif', 'tiff', 'heif'), or undefined. Read from the signature every one of these formats starts
 * with, so deciding costs nothing per image (sharp's metadata() costs 12-19% of a JPEG decode); an
 * SVG or PDF cannot start with any of them, and libvips picks its loader from the same signature.
 * test/image-formats.test.ts checks it against sharp's metadata.
 */
export function acceptedFormatOf(bytes: Uint8Array): string | undefined {
  const b = bytes;
  const at = (offset: number, text: string) => {
    if (b.length < offset + text.length) return false;
    for (let i = 0; i < text.length; i++) if (b[offset + i] !== text.charCodeAt(i)) return false;
    return true;
  };
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (at(0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  if (at(0, 'II*\0') || at(0, 'MM\0*') || at(0, 'II+\0') || at(0, 'MM\0+')) return 'tiff';
  if (at(4, 'ftyp') && b.length >= 12 && HEIF_BRANDS.has(String.fromCharCode(b[8]!, b[9]!, b[10]!, b[11]!))) return 'heif';
  return undefined;
}

/**
 * Whether encoded bytes of `format` stop before the format's own end: a JPEG without its end
 * marker (FF D9) as its last bytes, a PNG without its IEND chunk in its last 12 bytes, a WebP
 * shorter than its RIFF header says. False where that cannot be told (other formats, trailing data).
 */
export function endsEarly(bytes: Uint8Array, format: string): boolean {
  const n = bytes.length;
  if (format === 'jpeg') return !(n >= 4 && bytes[n - 2] === 0xff && bytes[n - 1] === 0xd9);
  if (format === 'png') return !(n >= 20 && bytes[n - 8] === 0x49 && bytes[n - 7] === 0x45 && bytes[n - 6] === 0x4e && bytes[n - 5] === 0x44);
  if (format === 'webp') return n >= 8 && 8 + (bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24)) > n;
  return false;
}

/**
 * How many colour components a JPEG's frame header (SOFn) declares: 1 grey, 3 YCbCr/RGB, 4 CMYK or
 * YCCK; undefined when no frame header is found. Reads marker lengths only, no pixel data.
 */
export function jpegComponentCount(bytes: Uint8Array): number | undefined {
  return jpegFrame(bytes)?.components;
}

/**
 * A JPEG's frame header (SOFn): its size as stored (before EXIF rotation) and its colour
 * components; undefined when no frame header is found. Reads marker lengths only, no pixel data.
 */
export function jpegFrame(bytes: Uint8Array): { width: number; height: number; components: number } | undefined {
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (bytes[i + 5]! << 8) | bytes[i + 6]!, width: (bytes[i + 7]! << 8) | bytes[i + 8]!, components: bytes[i + 9]! };
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image / start of scan before a frame
    if (marker >= 0xd0 && marker <= 0xd7) {
      i += 2;
      continue;
    }
    i += 2 + ((bytes[i + 2]! << 8) | bytes[i + 3]!);
  }
  return undefined;
}

/**
 * A best-effort name for bytes that are refused, for messages only (the decision is made by
 * acceptedFormatOf).
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

/**
 * The refusal of content in a format deimv2 does not decode: `format` is a name from sniffFormat
 * ('SVG', 'PDF', ...) or from sharp's metadata ('jp2', 'svg', ...).
 */
export function formatRefused(name: string, format: string, cause?: unknown): DeimError {
  return new DeimError(
    'ERR_INPUT_FORMAT',
    `${name}: ${formatLabel(format)} content refused: deimv2 decodes ${ACCEPTED_FORMAT_LIST} only (the format comes from the content, not the file name)`,
    { input: name, ...(cause === undefined ? {} : { cause }) },
  );
}

/** Bytes in no format anyone recognises: not an image at all. */
export function notAnImage(name: string, cause?: unknown): DeimError {
  return new DeimError('ERR_INPUT_UNREADABLE', `${name}: not an image in a format deimv2 decodes (${ACCEPTED_FORMAT_LIST})`, {
    input: name,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** True when sharp's error says the decode ran past its time limit. */
export function isTimeoutMessage(message: string): boolean {
  return /^timeout: \d+% complete/m.test(message);
}

export function decodeTimedOut(name: string, seconds: number, cause?: unknown): DeimError {
  return new DeimError('ERR_INPUT_TIMEOUT', `${name}: decoding took longer than ${seconds} s and was stopped`, { input: name, cause });
}

function formatLabel(format: string): string {
  return (Object.hasOwn(ACCEPTED_FORMATS, format) ? ACCEPTED_FORMATS[format] : undefined) ?? (format.length <= 4 ? format.toUpperCase() : format);
}
