/**
 * The image format comes from the bytes and only JPEG, PNG, WebP, GIF, TIFF and AVIF/HEIF are
 * decoded; SVG (even named .jpg), PDF, BMP and the rest are refused at once with ERR_INPUT_FORMAT,
 * and every decode has a time limit.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBuffer, Detector, type DetectionFailure, type DetectionResult } from '../dist/index.js';
import { acceptedFormatOf, decodeTimedOut, endsEarly, isTimeoutMessage, sniffFormat } from '../dist/image/formats.js';
import { ATTO, EXAMPLE } from './helpers/paths.js';
import { tempDir, write } from './helpers/images.js';
import { rejection } from './helpers/rejection.js';

// 195 bytes that ask the SVG renderer for an 8000x8000 Gaussian blur of radius 500: before the
// format check this took 13.6 minutes and 2.2 GB. The tests below give it a few seconds.
const BLUR_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="8000" height="8000"><filter id="b"><feGaussianBlur stdDeviation="500"/></filter><rect width="8000" height="8000" fill="red" filter="url(#b)"/></svg>';
const FAST = 15_000;

const MINIMAL_PDF = '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 8000 8000]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n';

/** A 2x2 24-bit BMP. */
function bmp(): Buffer {
  const row = 2 * 3 + 2; // padded to 4 bytes
  const pixels = 2 * row;
  const b = Buffer.alloc(54 + pixels);
  b.write('BM', 0, 'latin1');
  b.writeUInt32LE(b.length, 2);
  b.writeUInt32LE(54, 10);
  b.writeUInt32LE(40, 14);
  b.writeInt32LE(2, 18);
  b.writeInt32LE(2, 22);
  b.writeUInt16LE(1, 26);
  b.writeUInt16LE(24, 28);
  b.writeUInt32LE(pixels, 34);
  return b;
}


describe('image formats: decided from the content, allowlisted', () => {
  const dir = tempDir();

  it('the 195-byte blur SVG is refused at once', { timeout: FAST }, async () => {
    expect(Buffer.byteLength(BLUR_SVG)).toBe(195);
    const t0 = Date.now();
    const asBytes = await rejection(decodeBuffer(Buffer.from(BLUR_SVG), 'blur.svg'));
    expect(asBytes.code).toBe('ERR_INPUT_FORMAT');
    expect(asBytes.message).toMatch(/^blur\.svg: SVG content refused: deimv2 decodes JPEG, PNG, WebP, GIF, TIFF, AVIF\/HEIF only \(the format comes from the content, not the file name\)$/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('PDF, BMP, SVG with an XML prolog and plain text are refused with a name for what they are', async () => {
    const pdf = await rejection(decodeBuffer(Buffer.from(MINIMAL_PDF), 'doc.jpg'));
    expect([pdf.code, pdf.input]).toEqual(['ERR_INPUT_FORMAT', 'doc.jpg']);
    expect(pdf.message).toMatch(/^doc\.jpg: PDF content refused/);
    const b = await rejection(decodeBuffer(bmp(), 'tiny.bmp'));
    expect(b.code).toBe('ERR_INPUT_FORMAT');
    expect(b.message).toMatch(/^tiny\.bmp: BMP content refused/);
    const prolog = await rejection(decodeBuffer(Buffer.from(`<?xml version="1.0"?>\n<!-- hi -->\n${BLUR_SVG}`), 'p.png'));
    expect(prolog.code).toBe('ERR_INPUT_FORMAT');
    expect(prolog.message).toMatch(/SVG/);
    const text = await rejection(decodeBuffer(Buffer.from('just some text, not a picture\n'.repeat(10)), 'notes.png'));
    expect(text.code).toBe('ERR_INPUT_UNREADABLE');
    expect(text.message).toMatch(/^notes\.png: not an image in a format deimv2 decodes/);
  });

  it('sniffFormat names refused formats for messages', () => {
    expect(sniffFormat(Buffer.from(BLUR_SVG))).toBe('SVG');
    expect(sniffFormat(Buffer.from(MINIMAL_PDF))).toBe('PDF');
    expect(sniffFormat(bmp())).toBe('BMP');
    expect(sniffFormat(Buffer.from('hello'))).toBeUndefined();
  });

  it("the format decided from the signature is sharp's own reading of the content", async () => {
    const small = sharp(EXAMPLE).resize(64, 48);
    const samples: Array<[string, Buffer]> = [];
    for (const fmt of ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const) samples.push([fmt, await small.clone().toFormat(fmt).toBuffer()]);
    samples.push(['svg', Buffer.from(BLUR_SVG)]);
    for (const [what, bytes] of samples) {
      const { format } = await sharp(bytes).metadata();
      const expected = format === 'svg' ? undefined : format;
      expect([what, acceptedFormatOf(bytes)]).toEqual([what, expected]);
    }
    // Signatures alone are not enough to pass: an MP4 is an ISO-BMFF "ftyp" file too, but not HEIF.
    expect(acceptedFormatOf(Buffer.from('\0\0\0\x18ftypisom\0\0\x02\0isomiso2', 'latin1'))).toBeUndefined();
    expect(acceptedFormatOf(Buffer.from([0xff, 0xd8]))).toBeUndefined();
  });

  it('other known formats (here JPEG 2000) are refused by name, before any decoder runs', async () => {
    const jp2 = await rejection(decodeBuffer(Buffer.from('\x00\x00\x00\x0cjP  \r\n\x87\n' + 'x'.repeat(40), 'latin1'), 'a.jp2'));
    expect([jp2.code, jp2.message]).toEqual(['ERR_INPUT_FORMAT', expect.stringMatching(/^a\.jp2: JPEG 2000 content refused/)]);
  });

  it('every accepted format still decodes: JPEG, PNG, WebP, GIF, TIFF, AVIF', async () => {
    const small = sharp(EXAMPLE).resize(64, 48);
    for (const fmt of ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif'] as const) {
      const bytes = await small.clone().toFormat(fmt).toBuffer();
      const img = await decodeBuffer(bytes, `x.${fmt}`);
      expect([fmt, img.width, img.height, img.channels]).toEqual([fmt, 64, 48, 3]);
    }
  });

  it('a decode that runs past its time limit is a clear ERR_INPUT_TIMEOUT', () => {
    // sharp reports a stopped decode as "timeout: N% complete"; real slow decodes depend on the
    // machine's speed, so the mapping is checked on sharp's message and the limit on a real decode below.
    expect(isTimeoutMessage('timeout: 3% complete\nVipsImage: killed for image "temp-5"')).toBe(true);
    expect(isTimeoutMessage('Input buffer contains unsupported image format')).toBe(false);
    const e = decodeTimedOut('big.png', 60);
    expect([e.code, e.input, e.message]).toEqual(['ERR_INPUT_TIMEOUT', 'big.png', 'big.png: decoding took longer than 60 s and was stopped']);
  });

  it('decodeBuffer takes a time limit and refuses a bad one', async () => {
    const jpg = await sharp(EXAMPLE).resize(32, 24).jpeg().toBuffer();
    expect((await decodeBuffer(jpg, 'a.jpg', { timeoutSeconds: 1 })).width).toBe(32);
    expect((await rejection(decodeBuffer(jpg, 'a.jpg', { timeoutSeconds: 0.5 }))).code).toBe('ERR_INVALID_ARGUMENT');
  });

  describe('through the detector (pool workers)', () => {
    let detector: Detector;
    beforeAll(async () => {
      detector = await Detector.create({ model: ATTO, backend: 'cpu', threads: 1 });
    });
    afterAll(() => detector?.close());

    it('an SVG named .jpg in a batch is refused fast and the batch goes on', { timeout: FAST }, async () => {
      const svgJpg = write(dir, 'photo.jpg', BLUR_SVG);
      const pdf = write(dir, 'scan.png', MINIMAL_PDF);
      const results = await detector.detectBatch([svgJpg, pdf, EXAMPLE]);
      const svgFail = results[0] as DetectionFailure;
      expect(svgFail.error.code).toBe('ERR_INPUT_FORMAT');
      expect(svgFail.error.message).toContain(path.join(dir, 'photo.jpg'));
      expect(svgFail.error.message).toMatch(/SVG content refused/);
      expect((results[1] as DetectionFailure).error.code).toBe('ERR_INPUT_FORMAT');
      expect((results[2] as DetectionResult).detections.length).toBeGreaterThan(0);
    });

    it('an SVG given as a Buffer is refused fast', { timeout: FAST }, async () => {
      const e = await rejection(detector.detect(Buffer.from(BLUR_SVG)));
      expect(e.code).toBe('ERR_INPUT_FORMAT');
    });
  });
});

describe('endsEarly: bytes that stop before their format\'s end (the reason given when libvips loses its own)', () => {
  it('a whole JPEG, PNG and WebP end properly; cut short, each ends early; other formats are not judged', async () => {
    const rgb = { raw: { width: 16, height: 12, channels: 3 as const } };
    const pixels = Buffer.alloc(16 * 12 * 3, 90);
    const files = {
      jpeg: readFileSync(EXAMPLE),
      png: await sharp(pixels, rgb).png().toBuffer(),
      webp: await sharp(pixels, rgb).webp().toBuffer(),
    };
    for (const [format, bytes] of Object.entries(files)) {
      expect(acceptedFormatOf(bytes), format).toBe(format);
      expect(endsEarly(bytes, format), format).toBe(false);
      expect(endsEarly(bytes.subarray(0, bytes.length - 5), format), `${format} cut`).toBe(true);
    }
    expect(endsEarly(Buffer.from('GIF89a'), 'gif')).toBe(false);
  });
});
