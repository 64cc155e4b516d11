/**
 * The JS half of GPU preprocessing: for decoded RGB frames, the arguments of the native
 * `inferFrames(slot, batch, plan, tables, lut)` (binding/options.h FrameItem), computed by the same
 * code as the CPU path so the kernel (binding/preprocess.cu) reproduces imageToTensor bit for bit:
 *  - the resampling tables are Pillow's fixed-point weights from src/image/pil-resize.ts
 *    (axisWeights: a uniform span per output, zero-padded at the edges, which adds nothing);
 *  - the letterbox geometry is placement()'s from src/image/tensor.ts;
 *  - the uint8 -> float table is tensor.ts's ToTensor/Normalize table (rebuilt here the same way,
 *    and tested equal to what imageToTensor writes).
 * The frames themselves go into the slot's pinned staging as 1 byte per value (writeFrames).
 *
 * @example
 * const planned = planFrames(images, 320, 'stretch', 'none');
 * writeFrames(images, engine.frames(slot), planned);
 * await engine.inferFrames(slot, images.length, planned.plan, planned.tables, planned.lut);
 */
import { DeimError } from '../../errors.js';
import { placement, valueTable } from '../../image/tensor.js';
import { axisWeights, validateRawImage, validateSide } from '../../image/pil-resize.js';
import type { InputTransform, RawImage, ResizeMode } from '../../image/types.js';
import type { Normalization } from '../../models/variants.js';

/** int32 values per image in `plan` (binding/options.h kFrameItemFields). */
export const FRAME_ITEM_FIELDS = 12;
/** Field positions inside one image's row of `plan`. */
export const FrameField = {
  frameOffset: 0, srcWidth: 1, srcHeight: 2, srcStride: 3,
  hTable: 4, hTaps: 5, outWidth: 6, vTable: 7, vTaps: 8, outHeight: 9, offsetX: 10, offsetY: 11,
} as const;

export interface PlannedFrames {
  /** batch x FRAME_ITEM_FIELDS int32. */
  readonly plan: Int32Array;
  /** Every distinct resampling table once: outSize (first, count) pairs, then outSize x taps weights. */
  readonly tables: Int32Array;
  /** 3 x 256: the float each uint8 value becomes, per channel. */
  readonly lut: Float32Array;
  /** Bytes of frame staging the batch needs (the frames back to back). */
  readonly frameBytes: number;
  /** Per image, how it maps into the model's frame (as imageToTensor returns it). */
  readonly transforms: readonly InputTransform[];
}

/**
 * The uint8 -> float32 table of the CPU path (src/image/tensor.ts): ToTensor is float32(v) / 255,
 * Normalize is (x - mean) / std, each step rounded to float32 as torchvision does.
 */
export function frameValueTable(normalization: Normalization): Float32Array {
  if (normalization !== 'none' && normalization !== 'imagenet') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected 'none' or 'imagenet' for normalization but received ${String(normalization)}`, { input: 'normalization' });
  }
  return valueTable(normalization);
}

/** Where an image goes in the square input: its resized size and offset (letterbox), as imageToTensor places it. */
export function frameGeometry(width: number, height: number, size: number, mode: ResizeMode): { transform: InputTransform; outWidth: number; outHeight: number; offsetX: number; offsetY: number } {
  const transform = placement(width, height, size, mode);
  if (mode === 'stretch') return { transform, outWidth: size, outHeight: size, offsetX: 0, offsetY: 0 };
  // tensor.ts letterbox(): int() of the scaled sides, at least 1 pixel; placement's scale is that ratio.
  const outWidth = Math.max(1, Math.trunc(width * transform.scale));
  const outHeight = Math.max(1, Math.trunc(height * transform.scale));
  return { transform, outWidth, outHeight, offsetX: transform.padX, offsetY: transform.padY };
}

/** Bytes an RGB image takes in the frame staging. */
export function frameBytesOf(image: RawImage): number {
  return image.width * image.height * 3;
}

/**
 * The plan, tables and lut for `images` (RGB, channels 3) resized into a `size` x `size` input.
 * Images are laid out back to back in the staging in the given order.
 */
export function planFrames(images: readonly RawImage[], size: number, mode: ResizeMode, normalization: Normalization): PlannedFrames {
  validateSide(size, 'size');
  if (mode !== 'stretch' && mode !== 'letterbox') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected 'stretch' or 'letterbox' for mode but received ${String(mode)}`, { input: 'mode' });
  }
  const lut = frameValueTable(normalization);
  const plan = new Int32Array(images.length * FRAME_ITEM_FIELDS);
  const tableParts: Int32Array[] = [];
  const tableAt = new Map<number, number>();
  let tableLength = 0;
  // Video frames share one size: each (inSize, outSize) table is stored once per batch.
  const table = (inSize: number, outSize: number): { offset: number; taps: number } => {
    const w = axisWeights(inSize, outSize);
    const key = inSize * 0x10000 + outSize;
    let offset = tableAt.get(key);
    if (offset === undefined) {
      const part = new Int32Array(outSize * 2 + w.weights.length);
      for (let i = 0; i < outSize; i++) {
        part[2 * i] = w.start[i]!;
        part[2 * i + 1] = w.span;
      }
      part.set(w.weights, outSize * 2);
      offset = tableLength;
      tableAt.set(key, offset);
      tableParts.push(part);
      tableLength += part.length;
    }
    return { offset, taps: w.span };
  };
  const transforms: InputTransform[] = [];
  let frameOffset = 0;
  images.forEach((image, i) => {
    validateRawImage(image, `images[${i}]`);
    if (image.channels !== 3) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `Expected an RGB image (3 channels) for images[${i}] but received ${image.channels} channels`, { input: `images[${i}]` });
    }
    const g = frameGeometry(image.width, image.height, size, mode);
    const h = table(image.width, g.outWidth);
    const v = table(image.height, g.outHeight);
    plan.set([frameOffset, image.width, image.height, image.width * 3, h.offset, h.taps, g.outWidth, v.offset, v.taps, g.outHeight, g.offsetX, g.offsetY], i * FRAME_ITEM_FIELDS);
    transforms.push(g.transform);
    frameOffset += frameBytesOf(image);
  });
  const tables = new Int32Array(tableLength);
  let at = 0;
  for (const part of tableParts) {
    tables.set(part, at);
    at += part.length;
  }
  return { plan, tables, lut, frameBytes: frameOffset, transforms };
}

/** Copies the images' bytes into the slot's frame staging where `planned.plan` says they are. */
export function writeFrames(images: readonly RawImage[], staging: Uint8Array, planned: PlannedFrames): void {
  if (planned.frameBytes > staging.length) {
    throw new DeimError('ERR_TENSOR_SIZE', `Expected a frame staging of at least ${planned.frameBytes} bytes but it holds ${staging.length}`, { input: 'frames' });
  }
  images.forEach((image, i) => {
    const offset = planned.plan[i * FRAME_ITEM_FIELDS + FrameField.frameOffset]!;
    const bytes = frameBytesOf(image);
    staging.set(image.data.length === bytes ? image.data : image.data.subarray(0, bytes), offset);
  });
}
