/**
 * The WebAssembly SIMD preprocessing (src/image/wasm/resize.c via wasm-resize.ts) must give the
 * same floats, bit for bit, as the JavaScript passes (imageToTensorJs, the reference that
 * test/preprocess.test.ts ties to Pillow) on real photos, every channel count, both resize modes,
 * odd and upscaled sizes, and when written into a batch at an offset.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { imageToTensor, imageToTensorJs, tensorSize } from '../dist/image/tensor.js';
import { wasmResizeAvailable } from '../dist/image/wasm-resize.js';
import type { RawImage } from '../dist/image/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const shared = process.env.DEIMV2_SHARED ?? path.join(root, '..', 'shared');

async function decode(file: string): Promise<RawImage> {
  const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, channels: 3 };
}

/** Deterministic noise: every byte value occurs, neighbours are unrelated (worst case for rounding). */
function noiseImage(width: number, height: number, channels: 1 | 3 | 4, seed = 1): RawImage {
  const data = new Uint8Array(width * height * channels);
  let s = seed >>> 0;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    data[i] = s >>> 24;
  }
  return { data, width, height, channels };
}

/** The gray (first channel) and RGBA (noise alpha) versions of an RGB image. */
function asGray(image: RawImage): RawImage {
  const n = image.width * image.height;
  const data = new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = image.data[i * 3]!;
  return { data, width: image.width, height: image.height, channels: 1 };
}
function asRgba(image: RawImage): RawImage {
  const n = image.width * image.height;
  const data = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    data.set(image.data.subarray(i * 3, i * 3 + 3), i * 4);
    data[i * 4 + 3] = (i * 37) & 255;
  }
  return { data, width: image.width, height: image.height, channels: 4 };
}

/**
 * Converts `image` both ways into a 2-image batch at the second slot (the first slot and the
 * letterbox border must be left as the JavaScript path leaves them) and compares the bits.
 */
function expectSameAsJs(image: RawImage, size: number, mode: 'stretch' | 'letterbox', normalization: 'none' | 'imagenet' = 'none'): void {
  const floats = tensorSize(size);
  const js = new Float32Array(2 * floats).fill(-7);
  const wasm = new Float32Array(2 * floats).fill(-7);
  const tJs = imageToTensorJs(image, size, mode, normalization, js, floats);
  const tWasm = imageToTensor(image, size, mode, normalization, wasm, floats);
  expect(tWasm).toEqual(tJs);
  const a = new Uint32Array(js.buffer);
  const b = new Uint32Array(wasm.buffer);
  let firstDiff = -1;
  for (let i = 0; i < a.length && firstDiff < 0; i++) if (a[i] !== b[i]) firstDiff = i;
  const where = `${image.width}x${image.height}x${image.channels} -> ${size} ${mode} ${normalization}`;
  expect(firstDiff, `${where}: first differing float at ${firstDiff} (js ${js[firstDiff]}, wasm ${wasm[firstDiff]})`).toBe(-1);
}

describe('WebAssembly SIMD preprocessing', () => {
  it('is available on this Node (else the comparisons below would only test the JavaScript path)', () => {
    expect(wasmResizeAvailable()).toBe(true);
  });

  it('DEIMV2_NO_WASM=1 turns it off (the JavaScript path is then used)', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', "import { wasmResizeAvailable } from './dist/image/wasm-resize.js'; console.log(wasmResizeAvailable());"], {
      cwd: root,
      env: { ...process.env, DEIMV2_NO_WASM: '1' },
      encoding: 'utf8',
    });
    expect(out.trim()).toBe('false');
  });

  describe('on the 50 COCO images and example.jpg', () => {
    const photos: [string, RawImage][] = [];
    beforeAll(async () => {
      const cocoDir = path.join(shared, 'coco', 'val2017');
      const files = [path.join(shared, 'images', 'example.jpg'), ...readdirSync(cocoDir).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(cocoDir, f))];
      for (const f of files) photos.push([path.basename(f), await decode(f)]);
      expect(photos.length).toBe(51);
    });

    for (const size of [320, 416]) {
      for (const mode of ['stretch', 'letterbox'] as const) {
        it(`RGB, ${size}, ${mode}`, () => {
          for (const [, image] of photos) expectSameAsJs(image, size, mode);
        });
      }
    }

    it('gray and RGBA, ImageNet normalisation, both modes', () => {
      for (const [, image] of photos.slice(0, 12)) {
        for (const mode of ['stretch', 'letterbox'] as const) {
          expectSameAsJs(asGray(image), 320, mode, 'imagenet');
          expectSameAsJs(asRgba(image), 416, mode, 'imagenet');
          expectSameAsJs(image, 320, mode, 'imagenet');
        }
      }
    });
  });

  it('odd sizes, upscaling, thin and large images, all channel counts', () => {
    const shapes: [number, number][] = [[1, 1], [7, 5], [5, 7], [100, 80], [80, 100], [1, 300], [300, 1], [3, 2], [320, 320], [321, 319], [640, 480], [480, 640], [2000, 1500], [33, 1000]];
    for (const [w, h] of shapes) {
      for (const channels of [1, 3, 4] as const) {
        const image = noiseImage(w, h, channels, w * 31 + h);
        for (const size of [1, 2, 13, 320]) {
          expectSameAsJs(image, size, 'stretch');
          expectSameAsJs(image, size, 'letterbox', 'imagenet');
        }
      }
    }
  });

  it('reuses its memory correctly when sizes go up and down', () => {
    for (const [w, h] of [[2000, 1500], [7, 5], [1200, 900], [640, 480], [2000, 1500]] as const) {
      expectSameAsJs(noiseImage(w, h, 3, w), 320, 'stretch');
    }
  });
});
