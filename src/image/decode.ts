/**
 * Decoding with sharp: JPEG, PNG, WebP, TIFF, GIF (first frame) and AVIF/HEIF, decided from the
 * content (./formats.ts holds the allowlist and the time limit),
 * EXIF orientation applied so boxes are in the pixels of the upright image, grayscale / 16-bit
 * converted to 8-bit sRGB, CMYK converted with PIL's own formula (as the official pipeline's
 * convert('RGB'): lcms's CMYK profile would give other colours), alpha dropped without compositing
 * (as PIL's convert('RGB')).
 * Embedded ICC profiles are ignored, as PIL ignores them: the official pipeline feeds the model
 * the stored values, and converting them would move pixels away from what it was evaluated on.
 */
import { readFile, stat } from 'node:fs/promises';
import { requireSharp } from '../cjs.js';
import { DeimError, errorMessage } from '../errors.js';
import { DECODE_TIMEOUT_SECONDS, acceptedFormatOf, endsEarly, jpegComponentCount, decodeTimedOut, formatRefused, isTimeoutMessage, notAnImage, sniffFormat } from './formats.js';
import type { RawImage, RgbImage } from './types.js';
import { fetchImageUrl, isImageUrl, looksLikeUrl, redactUrl } from './fetch.js';

import { describeInput, fileError, type ImageInput } from './input.js';

const sharp = requireSharp();

export { describeInput, type ImageInput };

export interface DecodedImage extends RgbImage {
  /** The file it came from, when it came from a file. */
  file?: string;
}

/**
 * The bytes of an image file, or of an http(s) image URL (./fetch.ts: size cap and time limit).
 * Any other "scheme://" string is refused as a URL deimv2 does not fetch, never called a missing file.
 */
export async function readImageFile(file: string): Promise<Buffer> {
  if (looksLikeUrl(file)) return fetchImageUrl(file);
  let info;
  try {
    info = await stat(file);
  } catch (e) {
    throw fileError(file, e);
  }
  if (info.isDirectory()) throw new DeimError('ERR_INPUT_UNREADABLE', `${file}: is a directory, not an image`, { input: file });
  if (!info.isFile()) throw new DeimError('ERR_INPUT_UNREADABLE', `${file}: not a regular file (a device, pipe or socket); give an image file`, { input: file });
  if (info.size === 0) throw new DeimError('ERR_INPUT_EMPTY', `${file}: empty file (0 bytes)`, { input: file });
  try {
    return await readFile(file);
  } catch (e) {
    // Deleted between the look and the read (a folder changing under the run) is "no such file" too.
    throw fileError(file, e);
  }
}

export interface DecodeOptions {
  /** Whole seconds one decode may take (default DECODE_TIMEOUT_SECONDS). */
  timeoutSeconds?: number;
}

/**
 * Decodes encoded bytes to upright 8-bit RGB. `name` is used in error messages. The format is
 * read from the bytes first and must be on the allowlist of ./formats.ts (anything else is
 * refused before any decoder runs); the decode itself is stopped after `timeoutSeconds`.
 */
export async function decodeBuffer(bytes: Uint8Array, name: string, options: DecodeOptions = {}): Promise<RgbImage> {
  const seconds = options.timeoutSeconds ?? DECODE_TIMEOUT_SECONDS;
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `decode timeoutSeconds must be a whole number of seconds from 1 to 3600, got ${seconds}`);
  }
  if (isImageUrl(name)) name = redactUrl(name);
  if (bytes.length === 0) throw new DeimError('ERR_INPUT_EMPTY', `${name}: empty input (0 bytes)`, { input: name });
  const format = acceptedFormatOf(bytes);
  if (format === undefined) throw await refusal(bytes, name);
  const decode = async (): Promise<RgbImage> => {
    const input = () => sharp(bytes, { failOn: 'error', pages: 1, page: 0, ignoreIcc: true }).timeout({ seconds }).rotate();
    if (await isCmyk(bytes, format)) {
      const { data, info } = await input().pipelineColourspace('cmyk').toColourspace('cmyk').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
      if (info.channels !== 4) throw new Error(`decoder returned ${info.channels} channels for CMYK`);
      return { data: cmykToRgb(data), width: info.width, height: info.height, channels: 3 };
    }
    const { data, info } = await input()
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoder returned ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
  };
  let error: unknown;
  // libvips keeps one error buffer for the whole process: when several threads fail at once, one
  // can take another's message (or find it cleared): it then reads "Unknown error" or another
  // input's "not in a known format" (seen: 11 of 62 concurrent decodes of a truncated JPEG; 40 of
  // 1,500 with refused inputs failing beside them). The decode is tried again (at most twice more)
  // for the real reason; still without one, bytes that stop before their format's end are said to.
  const foreign = (e: unknown) => /^\s*unknown error\s*$|not in a known format/i.test(errorMessage(e));
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await decode();
    } catch (e) {
      error = e;
      if (!foreign(e)) break;
    }
  }
  if (foreign(error) && endsEarly(bytes, format)) {
    throw new DeimError('ERR_INPUT_UNREADABLE', `${name}: cannot decode image: premature end of the ${format.toUpperCase()} data (the file is truncated: it stops before its end marker)`, { input: name, cause: error });
  }
  throw decodeError(error, name, seconds);
}

/** CMYK content: a JPEG whose frame has 4 components (CMYK, YCCK), or a TIFF sharp reads as CMYK. */
async function isCmyk(bytes: Uint8Array, format: string): Promise<boolean> {
  if (format === 'jpeg') return jpegComponentCount(bytes) === 4;
  if (format !== 'tiff') return false;
  const { space } = await sharp(bytes, { failOn: 'error', pages: 1, page: 0 }).metadata();
  return space === 'cmyk';
}

/**
 * CMYK to RGB as PIL's convert('RGB') does it (Pillow's cmyk2rgb in Convert.c):
 * v = (255 - k) - round((255 - k) * c / 255) with its MULDIV255 rounding, per channel.
 */
export function cmykToRgb(cmyk: Uint8Array): Uint8Array {
  const n = cmyk.length >> 2;
  const out = new Uint8Array(n * 3);
  for (let i = 0, j = 0; i < n * 4; i += 4, j += 3) {
    const nk = 255 - cmyk[i + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = cmyk[i + c]! * nk + 128;
      out[j + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return out;
}

/**
 * Why bytes that start with no accepted signature are refused: a format named from its signature
 * (SVG, PDF, BMP...), else the format sharp's metadata recognises (header only: nothing is
 * rendered), else not an image at all.
 */
async function refusal(bytes: Uint8Array, name: string): Promise<DeimError> {
  const sniffed = sniffFormat(bytes);
  if (sniffed) return formatRefused(name, sniffed);
  try {
    const { format } = await sharp(bytes, { failOn: 'error', pages: 1, page: 0 }).metadata();
    return format ? formatRefused(name, format) : notAnImage(name);
  } catch (e) {
    return notAnImage(name, e);
  }
}

function decodeError(e: unknown, name: string, seconds: number): DeimError {
  if (e instanceof DeimError) return e;
  const msg = errorMessage(e);
  if (isTimeoutMessage(msg)) return decodeTimedOut(name, seconds, e);
  if (/pixel limit/i.test(msg)) {
    return new DeimError('ERR_INPUT_TOO_LARGE', `${name}: image is larger than the decoder's pixel limit (${msg})`, { input: name, cause: e });
  }
  if (/unsupported image format/i.test(msg)) return notAnImage(name, e);
  // The same line twice is another thread's copy of the message (libvips's shared error buffer).
  const lines = [...new Set(msg.split('\n').map((l) => l.replace(/\s+/g, ' ').trim()).filter(Boolean))];
  return new DeimError('ERR_INPUT_UNREADABLE', `${name}: cannot decode image: ${lines.join(' ')}`, { input: name, cause: e });
}

/** Checks a raw pixel buffer handed to the API and returns it as RGB(A) the resizer reads. */
export function checkRawImage(img: RawImage, name = describeInput(img)): RawImage {
  const { data, width, height, channels } = img ?? ({} as RawImage);
  if (!(data instanceof Uint8Array)) throw new DeimError('ERR_INVALID_ARGUMENT', `${name}: raw image data must be a Uint8Array or Buffer`, { input: name });
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `${name}: raw image width and height must be positive integers`, { input: name });
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `${name}: raw image channels must be 1, 3 or 4, got ${channels}`, { input: name });
  }
  if (data.length !== width * height * channels) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `${name}: raw image data has ${data.length} bytes, expected ${width}x${height}x${channels} = ${width * height * channels}`, { input: name });
  }
  return img;
}

/** Any accepted input to decoded pixels (raw images are checked and passed through). */
export async function decodeInput(input: ImageInput): Promise<{ image: RawImage; file?: string }> {
  if (typeof input === 'string') return { image: await decodeBuffer(await readImageFile(input), input), file: input };
  if (input instanceof Uint8Array) return { image: await decodeBuffer(input, describeInput(input)) };
  if (input && typeof input === 'object' && 'data' in input) return { image: checkRawImage(input) };
  throw new DeimError('ERR_INVALID_ARGUMENT', `image input must be a file path, a Buffer of encoded bytes, or {data, width, height, channels}; got ${typeof input}`);
}
