/**
 * Image -> model input tensor, fused: Pillow-exact bilinear resize, ToTensor (/255) and the
 * optional ImageNet normalisation, written as CHW float32 straight into the caller's batch buffer.
 *
 * The horizontal pass goes to a reused 8-bit scratch buffer (Pillow's intermediate image); the
 * vertical pass produces each final 8-bit value and immediately writes its float into the three
 * planes, so no resized RGB image is ever materialised.
 *
 * Float values match torchvision bit for bit: ToTensor is float32(v) / 255 in float32, and
 * Normalize is (x - mean) / std in float32, each step rounded to float32 (looked up in a table).
 */
import { DeimError } from '../errors.js';
import { IMAGENET_MEAN, IMAGENET_STD, type Normalization } from '../models/variants.js';
import { PRECISION_BITS, ROUNDING_BIAS, type AxisWeights, axisWeights, horizontalPass, rowsNeeded, scratchBuffer, validateRawImage, validateSide } from './pil-resize.js';
import type { InputTransform, RawImage, ResizeMode } from './types.js';
import { resizeToPlanesWasm, wasmResizeAvailable } from './wasm-resize.js';

/** Number of floats one image occupies in the input tensor: 3 planes of size x size. */
export function tensorSize(size: number): number {
  return 3 * size * size;
}

/** Per channel, the float each 8-bit value becomes: 3 x 256 entries (shared with the GPU kernel). */
const valueTables = new Map<Normalization, Float32Array>();

export function valueTable(normalization: Normalization): Float32Array {
  let table = valueTables.get(normalization);
  if (table !== undefined) return table;
  table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) {
      // Double division rounded once to float32 equals float32 division (IEEE: 53 >= 2*24+2 bits).
      let x = Math.fround(v / 255);
      if (normalization === 'imagenet') {
        x = Math.fround(Math.fround(x - Math.fround(IMAGENET_MEAN[c]!)) / Math.fround(IMAGENET_STD[c]!));
      }
      table[c * 256 + v] = x;
    }
  }
  valueTables.set(normalization, table);
  return table;
}

/** The official ONNX demo's letterbox geometry (tools/inference/onnx_inf.py of DEIMv2). */
interface Letterbox {
  readonly ratio: number;
  readonly newWidth: number;
  readonly newHeight: number;
  readonly padX: number;
  readonly padY: number;
}

function letterbox(width: number, height: number, size: number): Letterbox {
  const ratio = Math.min(size / width, size / height);
  // int() of the scaled sides; Pillow cannot resize to 0 pixels, so a 1-pixel strip at least.
  const newWidth = Math.max(1, Math.trunc(width * ratio));
  const newHeight = Math.max(1, Math.trunc(height * ratio));
  return { ratio, newWidth, newHeight, padX: Math.floor((size - newWidth) / 2), padY: Math.floor((size - newHeight) / 2) };
}

/**
 * How an image of `width` x `height` maps into the square input of side `size`. 'stretch' fills
 * the square (the official evaluation; the model gets the image size as orig_target_sizes and
 * answers in image pixels); 'letterbox' keeps the aspect ratio and centres the image on black
 * (the official ONNX demo; the model answers in the square's pixels).
 *
 * @example
 * placement(640, 480, 320, 'letterbox'); // { scale: 0.5, padX: 0, padY: 40, frameWidth: 320, ... }
 */
export function placement(width: number, height: number, size: number, mode: ResizeMode): InputTransform {
  if (mode === 'stretch') {
    return { mode, imageWidth: width, imageHeight: height, frameWidth: width, frameHeight: height, scale: 1, padX: 0, padY: 0 };
  }
  const box = letterbox(width, height, size);
  return { mode, imageWidth: width, imageHeight: height, frameWidth: size, frameHeight: size, scale: box.ratio, padX: box.padX, padY: box.padY };
}

/** Fill a rectangle of all three planes with the value black (0) maps to. */
function fillBlack(out: Float32Array, offset: number, size: number, table: Float32Array, x0: number, y0: number, x1: number, y1: number): void {
  if (x1 <= x0 || y1 <= y0) return;
  const plane = size * size;
  for (let c = 0; c < 3; c++) {
    const black = table[c * 256]!;
    for (let y = y0; y < y1; y++) {
      const start = offset + c * plane + y * size;
      out.fill(black, start + x0, start + x1);
    }
  }
}

/**
 * Resize `image` into the model input and write it as CHW float32 at `out[offset ..
 * offset + 3*size*size)`. Returns how the image maps into the model's frame; boxes in that
 * frame go back to image pixels as x = (x' - padX) / scale, y = (y' - padY) / scale.
 *
 * @example
 * const batch = new Float32Array(2 * tensorSize(320));
 * const t0 = imageToTensor(first, 320, 'stretch', 'none', batch, 0);
 * const t1 = imageToTensor(second, 320, 'stretch', 'none', batch, tensorSize(320));
 */
export function imageToTensor(
  image: RawImage,
  size: number,
  mode: ResizeMode,
  normalization: Normalization,
  out: Float32Array,
  offset = 0,
): InputTransform {
  return convertToTensor(image, size, mode, normalization, out, offset, wasmResizeAvailable());
}

/**
 * imageToTensor on the JavaScript passes only: the reference the WebAssembly kernels are tested
 * against (same arguments, same output float for float), and the path used without them.
 */
export function imageToTensorJs(
  image: RawImage,
  size: number,
  mode: ResizeMode,
  normalization: Normalization,
  out: Float32Array,
  offset = 0,
): InputTransform {
  return convertToTensor(image, size, mode, normalization, out, offset, false);
}

function convertToTensor(
  image: RawImage,
  size: number,
  mode: ResizeMode,
  normalization: Normalization,
  out: Float32Array,
  offset: number,
  useWasm: boolean,
): InputTransform {
  validateRawImage(image);
  validateSide(size, 'size');
  if (mode !== 'stretch' && mode !== 'letterbox') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected 'stretch' or 'letterbox' for mode but received ${String(mode)}`, { input: 'mode' });
  }
  if (normalization !== 'none' && normalization !== 'imagenet') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected 'none' or 'imagenet' for normalization but received ${String(normalization)}`, { input: 'normalization' });
  }
  if (!(out instanceof Float32Array)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a Float32Array for out but received ${typeof out}`, { input: 'out' });
  }
  const floats = tensorSize(size);
  if (!Number.isInteger(offset) || offset < 0 || offset + floats > out.length) {
    throw new DeimError(
      'ERR_TENSOR_SIZE',
      `Expected out to hold ${floats} floats at offset ${String(offset)} but it has ${out.length} (size ${size})`,
      { input: 'out' },
    );
  }

  const transform = placement(image.width, image.height, size, mode);
  const box = mode === 'letterbox' ? letterbox(image.width, image.height, size) : undefined;
  const newWidth = box?.newWidth ?? size;
  const newHeight = box?.newHeight ?? size;
  const padX = box?.padX ?? 0;
  const padY = box?.padY ?? 0;
  const table = valueTable(normalization);
  if (mode === 'letterbox') {
    fillBlack(out, offset, size, table, 0, 0, size, padY);
    fillBlack(out, offset, size, table, 0, padY + newHeight, size, size);
    fillBlack(out, offset, size, table, 0, padY, padX, padY + newHeight);
    fillBlack(out, offset, size, table, padX + newWidth, padY, size, padY + newHeight);
  }

  const xw = axisWeights(image.width, newWidth);
  const yw = axisWeights(image.height, newHeight);
  const [rowFirst, rowEnd] = rowsNeeded(yw);
  if (useWasm) {
    resizeToPlanesWasm(image, xw, yw, rowFirst, rowEnd, table, out, offset + padY * size + padX, size, size * size);
    return transform;
  }
  const rowBytes = newWidth * 3;
  const temp = scratchBuffer((rowEnd - rowFirst) * rowBytes);
  horizontalPass(image, xw, rowFirst, rowEnd, temp);

  verticalPassToPlanes(temp, rowBytes, rowFirst, yw, table, out, offset + padY * size + padX, size, size * size);
  return transform;
}

/**
 * The vertical pass fused with the conversion to floats: output row y of the resized image is
 * computed from the horizontally resized rows in `temp` and written, one float per channel, to
 * the three planes starting at `out[origin + y * stride]` (planes `plane` floats apart).
 */
function verticalPassToPlanes(
  temp: Uint8Array,
  rowBytes: number,
  rowFirst: number,
  yw: AxisWeights,
  table: Float32Array,
  out: Float32Array,
  origin: number,
  stride: number,
  plane: number,
): void {
  const width = rowBytes / 3;
  const span = yw.span;
  const start = yw.start;
  const wt = yw.weights;
  const plane2 = 2 * plane;
  for (let y = 0; y < yw.outSize; y++) {
    const k = y * span;
    const b0 = (start[y]! - rowFirst) * rowBytes;
    let o = origin + y * stride;
    // Sums stay below 2^31, so plain additions of Math.imul products are exact; the shift is
    // Pillow's clip8 (bilinear sums are never negative, only the 255 side needs clamping).
    if (span === 4) {
      const b1 = b0 + rowBytes;
      const b2 = b1 + rowBytes;
      const b3 = b2 + rowBytes;
      const w0 = wt[k]!;
      const w1 = wt[k + 1]!;
      const w2 = wt[k + 2]!;
      const w3 = wt[k + 3]!;
      for (let p = 0, end = rowBytes; p < end; p += 3) {
        const r = (ROUNDING_BIAS + Math.imul(temp[b0 + p]!, w0) + Math.imul(temp[b1 + p]!, w1) + Math.imul(temp[b2 + p]!, w2) + Math.imul(temp[b3 + p]!, w3)) >> PRECISION_BITS;
        const g = (ROUNDING_BIAS + Math.imul(temp[b0 + p + 1]!, w0) + Math.imul(temp[b1 + p + 1]!, w1) + Math.imul(temp[b2 + p + 1]!, w2) + Math.imul(temp[b3 + p + 1]!, w3)) >> PRECISION_BITS;
        const b = (ROUNDING_BIAS + Math.imul(temp[b0 + p + 2]!, w0) + Math.imul(temp[b1 + p + 2]!, w1) + Math.imul(temp[b2 + p + 2]!, w2) + Math.imul(temp[b3 + p + 2]!, w3)) >> PRECISION_BITS;
        out[o] = table[r > 255 ? 255 : r]!;
        out[o + plane] = table[256 + (g > 255 ? 255 : g)]!;
        out[o + plane2] = table[512 + (b > 255 ? 255 : b)]!;
        o++;
      }
    } else if (span === 2) {
      const b1 = b0 + rowBytes;
      const w0 = wt[k]!;
      const w1 = wt[k + 1]!;
      for (let p = 0, end = rowBytes; p < end; p += 3) {
        const r = (ROUNDING_BIAS + Math.imul(temp[b0 + p]!, w0) + Math.imul(temp[b1 + p]!, w1)) >> PRECISION_BITS;
        const g = (ROUNDING_BIAS + Math.imul(temp[b0 + p + 1]!, w0) + Math.imul(temp[b1 + p + 1]!, w1)) >> PRECISION_BITS;
        const b = (ROUNDING_BIAS + Math.imul(temp[b0 + p + 2]!, w0) + Math.imul(temp[b1 + p + 2]!, w1)) >> PRECISION_BITS;
        out[o] = table[r > 255 ? 255 : r]!;
        out[o + plane] = table[256 + (g > 255 ? 255 : g)]!;
        out[o + plane2] = table[512 + (b > 255 ? 255 : b)]!;
        o++;
      }
    } else {
      for (let x = 0; x < width; x++) {
        let p = b0 + x * 3;
        let r = ROUNDING_BIAS;
        let g = ROUNDING_BIAS;
        let b = ROUNDING_BIAS;
        for (let t = 0; t < span; t++) {
          const w = wt[k + t]!;
          r = (r + Math.imul(temp[p]!, w)) | 0;
          g = (g + Math.imul(temp[p + 1]!, w)) | 0;
          b = (b + Math.imul(temp[p + 2]!, w)) | 0;
          p += rowBytes;
        }
        r >>= PRECISION_BITS;
        g >>= PRECISION_BITS;
        b >>= PRECISION_BITS;
        out[o] = table[r > 255 ? 255 : r]!;
        out[o + plane] = table[256 + (g > 255 ? 255 : g)]!;
        out[o + plane2] = table[512 + (b > 255 ? 255 : b)]!;
        o++;
      }
    }
  }
}
