/**
 * Preprocessing parity with the official DEIMv2 pipeline (Pillow BILINEAR resize + ToTensor).
 * Golden outputs: test/fixtures/resize/, made by scripts/make-resize-fixtures.py with Pillow.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { decodeBuffer, readImageFile } from '../dist/image/decode.js';
import { resizeBilinear } from '../dist/image/pil-resize.js';
import { imageToTensor, placement, tensorSize } from '../dist/image/tensor.js';
import { DeimError } from '../dist/errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../dist/models/variants.js';
import type { RawImage } from '../dist/image/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = path.join(here, 'fixtures', 'resize');
const shared = process.env.DEIMV2_SHARED ?? path.join(here, '..', '..', 'shared');

interface FixtureCase {
  name: string;
  image: string;
  size: number;
  mode: 'stretch' | 'letterbox';
  pilFile: string;
  sameFile: string;
  sharpDecodedSha256: string;
}
const index = JSON.parse(readFileSync(path.join(fixtures, 'index.json'), 'utf8')) as { pillow: string; cases: FixtureCase[] };

/**
 * Decoding for the filter-only tests, as the fixtures were made: upright, 8-bit RGB, embedded ICC
 * profile ignored (as Pillow ignores it).
 */
async function decode(file: string): Promise<RawImage> {
  const { data, info } = await sharp(file, { ignoreIcc: true }).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: info.channels as 3 };
}

/** A fixture PNG's RGB bytes (PNG is lossless: these are exactly Pillow's output). */
async function fixturePixels(file: string): Promise<Uint8Array> {
  const { data } = await sharp(path.join(fixtures, file), { ignoreIcc: true }).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

/** CHW float tensor (values v/255) back to interleaved 8-bit RGB. */
function tensorToRgb(t: Float32Array, size: number): Uint8Array {
  const plane = size * size;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = Math.round(t[c * plane + i]! * 255);
  }
  return rgb;
}

function compare(ours: Uint8Array, ref: Uint8Array): { exact: number; withinOne: number; maxDiff: number } {
  expect(ours.length).toBe(ref.length);
  let exact = 0;
  let withinOne = 0;
  let maxDiff = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i]! - ref[i]!);
    if (d === 0) exact++;
    if (d <= 1) withinOne++;
    if (d > maxDiff) maxDiff = d;
  }
  return { exact: exact / ref.length, withinOne: withinOne / ref.length, maxDiff };
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe(`resize parity with Pillow ${index.pillow} BILINEAR`, () => {
  for (const c of index.cases) {
    it(`${c.name}: same decoded pixels -> bit-exact with Pillow (filter alone)`, async () => {
      const image = await decode(path.join(shared, c.image));
      expect(sha256(image.data), `sharp decodes ${c.image} differently from when the fixtures were made: rerun scripts/make-resize-fixtures.py`).toBe(
        c.sharpDecodedSha256,
      );
      const ref = await fixturePixels(c.sameFile);
      const tensor = new Float32Array(tensorSize(c.size));
      imageToTensor(image, c.size, c.mode, 'none', tensor);
      const fused = compare(tensorToRgb(tensor, c.size), ref);
      expect(fused.maxDiff).toBe(0);
      if (c.mode === 'stretch') {
        expect(compare(resizeBilinear(image, c.size, c.size), ref).maxDiff).toBe(0);
      }
    });

    it(`${c.name}: end to end (the package's decode + resize) vs Pillow decode + resize`, async () => {
      const file = path.join(shared, c.image);
      const image = await decodeBuffer(await readImageFile(file), file);
      const ref = await fixturePixels(c.pilFile);
      const tensor = new Float32Array(tensorSize(c.size));
      imageToTensor(image, c.size, c.mode, 'none', tensor);
      const r = compare(tensorToRgb(tensor, c.size), ref);
      console.log(`${c.name}: ${(r.withinOne * 100).toFixed(3)}% within 1, ${(r.exact * 100).toFixed(3)}% exact, max diff ${r.maxDiff}`);
      // Large differences on a file with an ICC profile mean the decoder applied it (Pillow does not).
      expect(r.withinOne, `${c.image}: ${(r.withinOne * 100).toFixed(2)}% of values within 1 of Pillow, max diff ${r.maxDiff}`).toBeGreaterThanOrEqual(0.995);
    });
  }
});

describe('imageToTensor layout and values', () => {
  // 3x2 RGB image whose every byte is distinct, resized to its own size: Pillow's resize is
  // then the identity, so each float is exactly one input byte.
  const tiny: RawImage = { data: Uint8Array.from({ length: 18 }, (_, i) => i * 14 + 3), width: 3, height: 2, channels: 3 };

  it('writes CHW planes of v/255 at the given offset and leaves the rest of the buffer alone', () => {
    const image: RawImage = { data: Uint8Array.from({ length: 27 }, (_, i) => i * 9 + 1), width: 3, height: 3, channels: 3 };
    const out = new Float32Array(2 * tensorSize(3)).fill(-7);
    const t = imageToTensor(image, 3, 'stretch', 'none', out, tensorSize(3));
    expect(Array.from(out.subarray(0, tensorSize(3)))).toEqual(new Array(27).fill(-7));
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 3; x++) {
        for (let c = 0; c < 3; c++) {
          expect(out[27 + c * 9 + y * 3 + x]).toBe(Math.fround(image.data[(y * 3 + x) * 3 + c]! / 255));
        }
      }
    }
    expect(t).toEqual({ mode: 'stretch', imageWidth: 3, imageHeight: 3, frameWidth: 3, frameHeight: 3, scale: 1, padX: 0, padY: 0 });
  });

  it("'imagenet' applies (v/255 - mean) / std per channel in float32, like torchvision", () => {
    const square: RawImage = { data: tiny.data.subarray(0, 12), width: 2, height: 2, channels: 3 };
    const out = new Float32Array(tensorSize(2));
    imageToTensor(square, 2, 'stretch', 'imagenet', out);
    for (let i = 0; i < 4; i++) {
      for (let c = 0; c < 3; c++) {
        const v = Math.fround(square.data[i * 3 + c]! / 255);
        const expected = Math.fround(Math.fround(v - Math.fround(IMAGENET_MEAN[c]!)) / Math.fround(IMAGENET_STD[c]!));
        expect(out[c * 4 + i]).toBe(expected);
        expect(out[c * 4 + i]).toBeCloseTo((square.data[i * 3 + c]! / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!, 5);
      }
    }
  });

  it('gray and RGBA inputs give the same tensor as the equivalent RGB image', async () => {
    const rgb = await decode(path.join(shared, 'images', 'example.jpg'));
    const pixels = rgb.width * rgb.height;
    const gray = new Uint8Array(pixels);
    const grayAsRgb = new Uint8Array(pixels * 3);
    const rgba = new Uint8Array(pixels * 4);
    for (let i = 0; i < pixels; i++) {
      gray[i] = rgb.data[i * 3 + 1]!;
      grayAsRgb.fill(gray[i]!, i * 3, i * 3 + 3);
      rgba.set(rgb.data.subarray(i * 3, i * 3 + 3), i * 4);
      rgba[i * 4 + 3] = i % 251; // alpha must not matter
    }
    // The tensor's bytes, hashed (comparing 300k floats with toEqual is needlessly slow).
    const run = (img: RawImage): string => {
      const out = new Float32Array(tensorSize(320));
      imageToTensor(img, 320, 'stretch', 'none', out);
      return sha256(new Uint8Array(out.buffer));
    };
    expect(run({ data: gray, width: rgb.width, height: rgb.height, channels: 1 })).toBe(
      run({ data: grayAsRgb, width: rgb.width, height: rgb.height, channels: 3 }),
    );
    expect(run({ data: rgba, width: rgb.width, height: rgb.height, channels: 4 })).toBe(run(rgb));
    expect(run({ data: gray, width: rgb.width, height: rgb.height, channels: 1 })).not.toBe(run(rgb));
  });

  it('letterbox follows the official ONNX demo: int() sides, floor-halved offsets, black padding', () => {
    expect(placement(640, 480, 320, 'letterbox')).toEqual({
      mode: 'letterbox', imageWidth: 640, imageHeight: 480, frameWidth: 320, frameHeight: 320, scale: 0.5, padX: 0, padY: 40,
    });
    // 427 * 0.5 = 213.5 -> 213 wide, (320 - 213) // 2 = 53.
    const portrait = placement(427, 640, 320, 'letterbox');
    expect(portrait).toMatchObject({ scale: 0.5, padX: 53, padY: 0, frameWidth: 320, frameHeight: 320 });
    // A box edge at x' = 53 + 100 in the model frame is x = 200 in the image.
    expect((153 - portrait.padX) / portrait.scale).toBe(200);

    const white: RawImage = { data: new Uint8Array(427 * 640 * 3).fill(255), width: 427, height: 640, channels: 3 };
    const out = new Float32Array(tensorSize(320));
    imageToTensor(white, 320, 'letterbox', 'imagenet', out);
    const plane = 320 * 320;
    for (let c = 0; c < 3; c++) {
      const black = Math.fround(Math.fround(0 - Math.fround(IMAGENET_MEAN[c]!)) / Math.fround(IMAGENET_STD[c]!));
      const whiteValue = Math.fround(Math.fround(1 - Math.fround(IMAGENET_MEAN[c]!)) / Math.fround(IMAGENET_STD[c]!));
      for (const y of [0, 160, 319]) {
        expect(out[c * plane + y * 320 + 52]).toBe(black); // last padded column on the left
        expect(out[c * plane + y * 320 + 53]).toBe(whiteValue); // first image column
        expect(out[c * plane + y * 320 + 265]).toBe(whiteValue); // last image column (53 + 213 - 1)
        expect(out[c * plane + y * 320 + 266]).toBe(black); // first padded column on the right
      }
    }
  });
});

describe('bad arguments', () => {
  const image: RawImage = { data: new Uint8Array(4 * 4 * 3), width: 4, height: 4, channels: 3 };
  const expectCode = (fn: () => unknown, code: string, message: RegExp): void => {
    let thrown: unknown;
    try {
      fn();
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(DeimError);
    expect((thrown as DeimError).code).toBe(code);
    expect((thrown as DeimError).message).toMatch(message);
  };

  it('out too short or offset out of range -> ERR_TENSOR_SIZE', () => {
    expectCode(() => imageToTensor(image, 8, 'stretch', 'none', new Float32Array(tensorSize(8) - 1)), 'ERR_TENSOR_SIZE', /hold 192 floats at offset 0 but it has 191/);
    expectCode(() => imageToTensor(image, 8, 'stretch', 'none', new Float32Array(2 * tensorSize(8)), tensorSize(8) + 1), 'ERR_TENSOR_SIZE', /offset 193/);
    expectCode(() => imageToTensor(image, 8, 'stretch', 'none', new Float32Array(tensorSize(8)), -1), 'ERR_TENSOR_SIZE', /offset -1/);
    expectCode(() => resizeBilinear(image, 8, 8, new Uint8Array(10)), 'ERR_TENSOR_SIZE', /at least 192 bytes/);
  });

  it('bad size, mode, normalization or out type -> ERR_INVALID_ARGUMENT', () => {
    const out = new Float32Array(tensorSize(8));
    expectCode(() => imageToTensor(image, 0, 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /for size but received 0/);
    expectCode(() => imageToTensor(image, 7.5, 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /for size but received 7.5/);
    expectCode(() => imageToTensor(image, 8, 'fit' as 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /for mode but received fit/);
    expectCode(() => imageToTensor(image, 8, 'stretch', 'z' as 'none', out), 'ERR_INVALID_ARGUMENT', /for normalization but received z/);
    expectCode(() => imageToTensor(image, 8, 'stretch', 'none', [] as unknown as Float32Array), 'ERR_INVALID_ARGUMENT', /Float32Array for out/);
    expectCode(() => resizeBilinear(image, 8, -2), 'ERR_INVALID_ARGUMENT', /for outHeight but received -2/);
  });

  it('malformed images -> ERR_INVALID_ARGUMENT', () => {
    const out = new Float32Array(tensorSize(8));
    expectCode(() => imageToTensor({ ...image, channels: 2 as 3 }, 8, 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /1, 3 or 4 channels for image but received 2/);
    expectCode(() => imageToTensor({ ...image, width: 0 }, 8, 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /width .* but received 0/);
    expectCode(() => imageToTensor({ ...image, height: 5 }, 8, 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /at least 60 bytes \(4x5x3\) for image but received 48/);
    expectCode(() => imageToTensor({ ...image, data: [1, 2] as unknown as Uint8Array }, 8, 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /Uint8Array/);
    expectCode(() => imageToTensor(null as unknown as RawImage, 8, 'stretch', 'none', out), 'ERR_INVALID_ARGUMENT', /Uint8Array/);
  });
});
