/** Every kind of broken input gets a DeimError naming the input and the problem; batches go on. */
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuSession, Detector, type DetectionFailure, type DetectionResult } from '../dist/index.js';
import { ATTO, EXAMPLE, MODEL_DIR } from './helpers/paths.js';
import { pngHeaderOnly, tempDir, write } from './helpers/images.js';
import { rejection } from './helpers/rejection.js';


describe('bad images', () => {
  let detector: Detector;
  const dir = tempDir();
  beforeAll(async () => {
    detector = await Detector.create({ model: ATTO, backend: 'cpu' });
  });
  afterAll(() => detector?.close());

  const cases: Array<[string, () => string | Buffer, string, RegExp]> = [
    ['missing file', () => path.join(dir, 'nope.jpg'), 'ERR_INPUT_NOT_FOUND', /nope\.jpg: no such file/],
    ['zero-byte file', () => write(dir, 'empty.jpg', ''), 'ERR_INPUT_EMPTY', /empty\.jpg: empty file/],
    ['text file named .jpg', () => write(dir, 'text.jpg', 'hello, I am not a JPEG\n'.repeat(20)), 'ERR_INPUT_UNREADABLE', /text\.jpg: not an image/],
    ['truncated JPEG', () => write(dir, 'truncated.jpg', readFileSync(EXAMPLE).subarray(0, 20_000)), 'ERR_INPUT_UNREADABLE', /truncated\.jpg: cannot decode/],
    ['image over the pixel limit', () => write(dir, 'huge.png', pngHeaderOnly(40_000, 40_000)), 'ERR_INPUT_TOO_LARGE', /huge\.png: image is larger than the decoder's pixel limit/],
    ['directory given as an image', () => dir, 'ERR_INPUT_UNREADABLE', /is a directory/],
    ['empty buffer', () => Buffer.alloc(0), 'ERR_INPUT_EMPTY', /empty input/],
  ];
  for (const [name, make, code, message] of cases) {
    it(`${name}: ${code}`, async () => {
      const e = await rejection(detector.detect(make()));
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
    });
  }

  it('raw pixels of the wrong size or kind', async () => {
    const bad = await rejection(detector.detect({ data: new Uint8Array(10), width: 4, height: 4, channels: 3 }));
    expect(bad.code).toBe('ERR_INVALID_ARGUMENT');
    expect(bad.message).toMatch(/10 bytes, expected 4x4x3 = 48/);
    expect((await rejection(detector.detect({ data: new Uint8Array(32), width: 4, height: 4, channels: 2 as 3 }))).message).toMatch(/channels must be 1, 3 or 4/);
    expect((await rejection(detector.detect(42 as unknown as string))).code).toBe('ERR_INVALID_ARGUMENT');
  });

  it('a batch goes on past bad files and reports each', async () => {
    const results = await detector.detectBatch([EXAMPLE, path.join(dir, 'gone.jpg'), write(dir, 'junk.png', 'junk'), EXAMPLE]);
    expect((results[0] as DetectionResult).detections.length).toBeGreaterThan(0);
    expect((results[1] as DetectionFailure).error.code).toBe('ERR_INPUT_NOT_FOUND');
    expect((results[1] as DetectionFailure).file).toBe(path.join(dir, 'gone.jpg'));
    expect((results[2] as DetectionFailure).error.message).toMatch(/junk\.png/);
    expect((results[3] as DetectionResult).detections).toEqual((results[0] as DetectionResult).detections);
  });

  it('grayscale, RGBA, 16-bit, CMYK, GIF, WebP and TIFF inputs decode to upright RGB', async () => {
    const base = sharp(EXAMPLE);
    const variants: Array<[string, Promise<Buffer>]> = [
      ['gray png', base.clone().grayscale().png().toBuffer()],
      ['rgba png', base.clone().ensureAlpha(0.5).png().toBuffer()],
      ['16-bit png', base.clone().toColourspace('rgb16').png().toBuffer()],
      ['cmyk jpeg', base.clone().toColourspace('cmyk').jpeg().toBuffer()],
      ['gif', base.clone().gif().toBuffer()],
      ['webp', base.clone().webp({ quality: 95 }).toBuffer()],
      ['tiff', base.clone().tiff().toBuffer()],
    ];
    for (const [name, bytes] of variants) {
      const r = await detector.detect(await bytes);
      expect([name, r.width, r.height]).toEqual([name, 500, 375]);
      expect(r.detections.some((d) => d.label === 'person'), name).toBe(true);
    }
  });
});

describe('bad models and options', () => {
  const dir = tempDir();
  it('unknown variant names the choices', async () => {
    const e = await rejection(Detector.create({ model: 'gigantic' }));
    expect(e.code).toBe('ERR_UNKNOWN_VARIANT');
    expect(e.message).toMatch(/atto, femto, pico, n, s, m, l, x/);
  });
  it('a variant whose file is nowhere says where it looked', async () => {
    const e = await rejection(Detector.create({ model: 'x', modelDir: dir }));
    expect(e.code).toBe('ERR_MODEL_NOT_FOUND');
    expect(e.message).toContain('deimv2_dinov3_x_coco.onnx');
    expect(e.message).toContain(dir);
  });
  it('a missing .onnx path', async () => {
    expect((await rejection(Detector.create({ model: path.join(dir, 'missing.onnx') }))).code).toBe('ERR_MODEL_NOT_FOUND');
  });
  it('a corrupt and a truncated .onnx', async () => {
    const corrupt = write(dir, 'corrupt.onnx', Buffer.from('this is not a protobuf'.repeat(50)));
    const e = await rejection(Detector.create({ model: corrupt, backend: 'cpu' }));
    expect(e.code).toBe('ERR_MODEL_INVALID');
    expect(e.message).toContain('corrupt.onnx');
    const truncated = write(dir, 'deimv2_hgnetv2_atto_coco.onnx', readFileSync(ATTO).subarray(0, 500_000));
    const t = await rejection(Detector.create({ model: truncated, backend: 'cpu', layout: 'single' }));
    expect(t.code).toBe('ERR_MODEL_INVALID');
  });
  it('an ONNX that is not a DEIMv2 export says what was expected', async () => {
    const onnx = await import('onnx-proto');
    const P = (onnx as any).onnx ?? (onnx as any).default?.onnx;
    const tensor = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } } });
    const model = P.ModelProto.create({
      irVersion: 8, opsetImport: [{ domain: '', version: 17 }], producerName: 'test',
      graph: { name: 'g', node: [{ opType: 'Identity', input: ['x'], output: ['y'], name: 'id' }], input: [tensor('x')], output: [tensor('y')] },
    });
    const file = write(dir, 'identity.onnx', Buffer.from(P.ModelProto.encode(model).finish()));
    const e = await rejection(Detector.create({ model: file, backend: 'cpu', threads: 1 }));
    expect(e.code).toBe('ERR_MODEL_NOT_DEIMV2');
    expect(e.message).toMatch(/identity\.onnx is not a DEIMv2 export: expected inputs images float32 \[N,3,H,W\] and orig_target_sizes int64 \[N,2\]/);
    expect(e.message).toMatch(/it has inputs x float32 \[1,4\]/);
  });
  it('wrong threshold, batch, resize and class names are rejected before any work', async () => {
    expect((await rejection(Detector.create({ model: ATTO, threshold: 1.5 }))).message).toMatch(/threshold must be a number from 0 to 1, got 1.5/);
    expect((await rejection(Detector.create({ model: ATTO, threshold: Number.NaN }))).code).toBe('ERR_INVALID_ARGUMENT');
    expect((await rejection(Detector.create({ model: ATTO, batch: 0 }))).message).toMatch(/batch must be an integer/);
    expect((await rejection(Detector.create({ model: ATTO, resize: 'crop' as 'stretch' }))).message).toMatch(/resize must be/);
    expect((await rejection(Detector.create({ model: ATTO, classes: ['unicorn'] }))).message).toMatch(/unknown class "unicorn"/);
    expect((await rejection(Detector.create({ model: ATTO, classNames: path.join(dir, 'none.txt') }))).code).toBe('ERR_CLASS_NAMES');
  });
  it('a tensor of the wrong length given to the backend', async () => {
    const session = await CpuSession.create(ATTO, { threads: 1 });
    try {
      const e = await rejection(session.run({ images: new Float32Array(3 * 320 * 320 - 1), sizes: new Int32Array([500, 375]), batch: 1 }));
      expect(e.code).toBe('ERR_TENSOR_SIZE');
      expect(e.message).toMatch(/expected 1x3x320x320 = 307200/);
      expect((await rejection(session.run({ images: new Float32Array(3 * 320 * 320), sizes: new Int32Array([500]), batch: 1 }))).code).toBe('ERR_TENSOR_SIZE');
    } finally {
      await session.close();
    }
    const closed = await rejection(session.run({ images: new Float32Array(3 * 320 * 320), sizes: new Int32Array([500, 375]), batch: 1 }));
    expect(closed.code).toBe('ERR_CLOSED');
  });
  it('a closed detector rejects new work', async () => {
    const d = await Detector.create({ model: ATTO, backend: 'cpu', threads: 1 });
    await d.close();
    expect((await rejection(d.detect(EXAMPLE))).code).toBe('ERR_CLOSED');
  });
  it('the tensorrt backend, when unavailable, says why', async () => {
    const { backendAvailability } = await import('../dist/index.js');
    const trt = backendAvailability().find((b) => b.name === 'tensorrt')!;
    if (trt.available) return; // a machine with TensorRT: covered by test:gpu
    const e = await rejection(Detector.create({ model: ATTO, backend: 'tensorrt' }));
    expect(e.code).toBe('ERR_BACKEND_UNAVAILABLE');
    expect(e.message).toMatch(/^TensorRT unavailable: /);
  });
});
