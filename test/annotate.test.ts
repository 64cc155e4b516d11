import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { drawDetections, lineWidthFor } from '../dist/annotate/draw.js';
import { CELL_WIDTH, FONT_ROWS, GLYPH_HEIGHT, GLYPH_WIDTH, fontScaleFor, glyphPixel, textWidth } from '../dist/annotate/font.js';
import { PALETTE, classColor, textColorOn } from '../dist/annotate/palette.js';
import { outputPathFor, writeAnnotatedImage } from '../dist/annotate/write.js';
import type { Detection } from '../dist/postprocess/types.js';

const EXAMPLE_JPG = path.resolve(import.meta.dirname, '../../shared/images/example.jpg');
const GRAY = 100;

type Image = { data: Uint8Array; width: number; height: number; channels: 3 | 4 };

function grayImage(width: number, height: number, channels: 3 | 4 = 3): Image {
  const data = new Uint8Array(width * height * channels).fill(GRAY);
  if (channels === 4) for (let i = 3; i < data.length; i += 4) data[i] = 0;
  return { data, width, height, channels };
}

function pixel(image: Image, x: number, y: number): number[] {
  const i = (y * image.width + x) * image.channels;
  return Array.from(image.data.subarray(i, i + image.channels));
}

function rgb(image: Image, x: number, y: number): number[] {
  return pixel(image, x, y).slice(0, 3);
}

function detection(box: [number, number, number, number], classId = 0, label = 'person', score = 0.87): Detection {
  return { label, classId, categoryId: classId + 1, score, box };
}

const NO_CAPTION = { showScore: false, labelFor: () => '' };
const RED = [...PALETTE[0]!];
const UNTOUCHED = [GRAY, GRAY, GRAY];

describe('font', () => {
  it('has a glyph of 9 five-bit rows for each printable ASCII character, all but space inked', () => {
    expect(FONT_ROWS.length).toBe(95 * GLYPH_HEIGHT);
    for (const row of FONT_ROWS) expect(row).toBeLessThan(1 << GLYPH_WIDTH);
    for (let code = 33; code <= 126; code++) {
      let inked = 0;
      for (let y = 0; y < GLYPH_HEIGHT; y++) for (let x = 0; x < GLYPH_WIDTH; x++) if (glyphPixel(code, x, y)) inked++;
      expect(inked, String.fromCharCode(code)).toBeGreaterThan(0);
    }
  });

  it('gives distinct glyphs to distinct characters', () => {
    const seen = new Set<string>();
    for (let code = 32; code <= 126; code++) seen.add(FONT_ROWS.subarray((code - 32) * 9, (code - 31) * 9).join(','));
    expect(seen.size).toBe(95);
  });

  it('renders characters outside printable ASCII as "?"', () => {
    for (let y = 0; y < GLYPH_HEIGHT; y++) {
      for (let x = 0; x < GLYPH_WIDTH; x++) expect(glyphPixel(0xe9, x, y)).toBe(glyphPixel(63, x, y));
    }
  });

  it('measures text and picks a scale from the image size', () => {
    expect(textWidth('', 2)).toBe(0);
    expect(textWidth('ab', 1)).toBe(11);
    expect(textWidth('ab', 3)).toBe(33);
    expect(fontScaleFor(320, 240)).toBe(1);
    expect(fontScaleFor(500, 375)).toBe(1);
    expect(fontScaleFor(1280, 720)).toBe(2);
    expect(fontScaleFor(1920, 1080)).toBe(3);
    expect(lineWidthFor(320, 240)).toBe(1);
    expect(lineWidthFor(1920, 1080)).toBe(4);
  });
});

describe('palette', () => {
  it('indexes 20 colours by class id, wrapping and tolerating odd ids', () => {
    expect(PALETTE.length).toBe(20);
    expect(new Set(PALETTE.map((c) => c.join())).size).toBe(20);
    expect(classColor(0)).toEqual(PALETTE[0]);
    expect(classColor(21)).toEqual(PALETTE[1]);
    expect(classColor(-1)).toEqual(PALETTE[19]);
    expect(classColor(Number.NaN)).toEqual(PALETTE[0]);
  });

  it('chooses black text on light backgrounds and white on dark ones', () => {
    expect(textColorOn([255, 221, 0])).toEqual([0, 0, 0]);
    expect(textColorOn([0, 70, 160])).toEqual([255, 255, 255]);
    expect(textColorOn([255, 56, 56])).toEqual([255, 255, 255]);
  });
});

describe('drawDetections', () => {
  it('draws the outline in the class colour on the box edges and leaves the inside untouched', () => {
    const image = grayImage(100, 80);
    drawDetections(image, [detection([10, 20, 60, 70])], { lineWidth: 2, ...NO_CAPTION });
    for (const x of [10, 11, 58, 59]) expect(rgb(image, x, 45)).toEqual(RED);
    for (const y of [20, 21, 68, 69]) expect(rgb(image, 35, y)).toEqual(RED);
    for (const [x, y] of [[12, 45], [57, 45], [35, 22], [35, 67], [35, 45], [9, 45], [60, 45], [35, 19], [35, 70]] as const) {
      expect(rgb(image, x, y), `${x},${y}`).toEqual(UNTOUCHED);
    }
  });

  it('uses each class its own colour', () => {
    const image = grayImage(60, 60);
    drawDetections(image, [detection([5, 5, 25, 25], 7), detection([30, 30, 55, 55], 12)], { lineWidth: 1, ...NO_CAPTION });
    expect(rgb(image, 5, 15)).toEqual([...PALETTE[7]!]);
    expect(rgb(image, 30, 40)).toEqual([...PALETTE[12]!]);
  });

  it('clips boxes partly outside the image without writing past the buffer', () => {
    const width = 50;
    const height = 50;
    const backing = new Uint8Array(width * height * 3 + 64).fill(GRAY);
    const image: Image = { data: backing.subarray(0, width * height * 3), width, height, channels: 3 };
    drawDetections(image, [detection([-20, -20, 30, 30]), detection([40, 40, 80, 80], 1)], { lineWidth: 2, ...NO_CAPTION });
    expect(rgb(image, 29, 10)).toEqual(RED); // right edge of the first box
    expect(rgb(image, 10, 29)).toEqual(RED); // its bottom edge
    expect(rgb(image, 40, 49)).toEqual([...PALETTE[1]!]); // left edge of the second, down to the last row
    expect(rgb(image, 49, 40)).toEqual([...PALETTE[1]!]); // its top edge, out to the last column
    expect(rgb(image, 45, 45)).toEqual(UNTOUCHED);
    expect(Array.from(backing.subarray(width * height * 3)).every((v) => v === GRAY)).toBe(true);
  });

  it('ignores NaN, infinite, inverted and off-image boxes', () => {
    const image = grayImage(40, 30);
    const before = image.data.slice();
    drawDetections(image, [
      detection([Number.NaN, 2, 20, 20]),
      detection([2, 2, 20, Number.NaN]),
      detection([2, 2, Number.POSITIVE_INFINITY, 20]),
      detection([20, 2, 10, 20]),
      detection([2, 20, 20, 10]),
      detection([50, 50, 60, 60]),
      detection([-30, -30, -1, -1]),
    ]);
    expect(image.data).toEqual(before);
  });

  it('draws a caption above the box whose text pixels match the font bitmap', () => {
    const scale = 2;
    const image = grayImage(120, 100);
    const box: [number, number, number, number] = [10, 60, 100, 95];
    drawDetections(image, [detection(box, 0)], { lineWidth: 1, fontScale: scale, showScore: false, labelFor: () => 'Hg7' });
    const captionHeight = (GLYPH_HEIGHT + 3) * scale;
    const top = box[1] - captionHeight;
    const textX = box[0] + 2 * scale;
    const textY = top + 2 * scale;
    const ink = [...textColorOn(PALETTE[0]!)];
    const text = 'Hg7';
    for (let y = 0; y < GLYPH_HEIGHT * scale; y++) {
      for (let x = 0; x < textWidth(text, scale); x++) {
        const char = Math.floor(x / (CELL_WIDTH * scale));
        const inked = glyphPixel(text.charCodeAt(char), Math.floor(x / scale) % CELL_WIDTH, Math.floor(y / scale));
        expect(rgb(image, textX + x, textY + y), `(${x},${y})`).toEqual(inked ? ink : RED);
      }
    }
    expect(rgb(image, box[0], top)).toEqual(RED); // caption background corner
    expect(rgb(image, box[0], top - 1)).toEqual(UNTOUCHED); // nothing above the caption
  });

  it('captions "label score" by default, with text pixels in the caption area', () => {
    const image = grayImage(200, 100);
    drawDetections(image, [detection([20, 50, 150, 90], 0, 'person', 0.8712)], { fontScale: 1 });
    const ink = textColorOn(PALETTE[0]!).join();
    let inked = 0;
    let background = 0;
    for (let y = 50 - 12; y < 50; y++) {
      for (let x = 20; x < 20 + textWidth('person 0.87', 1) + 4; x++) {
        const value = rgb(image, x, y).join();
        if (value === ink) inked++;
        else if (value === RED.join()) background++;
        else throw new Error(`unexpected colour ${value} at ${x},${y}`);
      }
    }
    expect(inked).toBeGreaterThan(60);
    expect(background).toBeGreaterThan(inked);
    expect(rgb(image, 20 + textWidth('person 0.87', 1) + 4, 45)).toEqual(UNTOUCHED); // caption ends
  });

  it('puts the caption inside the box at the top edge and keeps it inside the image on the right', () => {
    const image = grayImage(80, 60);
    drawDetections(image, [detection([70, 0, 80, 50])], { lineWidth: 1, fontScale: 1 });
    const width = textWidth('person 0.87', 1) + 4;
    expect(rgb(image, 79, 0)).toEqual(RED);
    expect(rgb(image, 80 - width, 0)).toEqual(RED); // shifted left to fit
    expect(rgb(image, 80 - width - 1, 0)).toEqual(UNTOUCHED);
    expect(rgb(image, 80 - width, 12)).toEqual(UNTOUCHED); // caption is 12 rows tall
  });

  it('draws on a 1x1 image', () => {
    const image = grayImage(1, 1);
    drawDetections(image, [detection([0, 0, 1, 1])]);
    expect(rgb(image, 0, 0)).not.toEqual(UNTOUCHED);
  });

  it('draws on a 4-channel image, making drawn pixels opaque and leaving others alone', () => {
    const image = grayImage(40, 40, 4);
    drawDetections(image, [detection([5, 5, 35, 35])], { lineWidth: 1, ...NO_CAPTION });
    expect(pixel(image, 5, 20)).toEqual([...RED, 255]);
    expect(pixel(image, 20, 20)).toEqual([GRAY, GRAY, GRAY, 0]);
  });

  it('rejects malformed images and options with ERR_INVALID_ARGUMENT', () => {
    const bad = [
      () => drawDetections({ ...grayImage(4, 4), channels: 2 as 3 }, []),
      () => drawDetections({ ...grayImage(4, 4), width: 5 }, []),
      () => drawDetections({ ...grayImage(4, 4), height: 0 }, []),
      () => drawDetections({ ...grayImage(4, 4), data: [] as unknown as Uint8Array }, []),
      () => drawDetections(grayImage(4, 4), [], { lineWidth: 0 }),
      () => drawDetections(grayImage(4, 4), [], { fontScale: 1.5 }),
    ];
    for (const call of bad) expect(call).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    expect(bad[1]).toThrow(/Expected at least 60 bytes of image data for 5x4x3 but received 48/);
    expect(bad[4]).toThrow(/positive integer for lineWidth but received 0/);
  });
});

describe('writeAnnotatedImage', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'deimv2-annotate-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('annotates example.jpg and writes a PNG that reads back pixel for pixel', async () => {
    const { data, info } = await sharp(EXAMPLE_JPG).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const image: Image = { data, width: info.width, height: info.height, channels: 3 };
    drawDetections(image, [detection([40, 60, 190, 370]), detection([300, 0, 420, 250], 54, 'donut', 0.45)]);
    const out = path.join(dir, 'nested', 'deeper', 'example.png');
    await writeAnnotatedImage(image, out);
    const back = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect(back.info).toMatchObject({ width: 500, height: 375, channels: 3, format: 'raw' });
    expect(Buffer.compare(back.data, Buffer.from(image.data.buffer, image.data.byteOffset, image.data.byteLength))).toBe(0);
    expect(rgb(image, 40, 200)).toEqual(RED);
  });

  it.each(['jpg', 'jpeg', 'webp', 'tif', 'tiff', 'avif', 'gif', 'JPG'])('writes .%s in that format', async (extension) => {
    const image = grayImage(64, 48);
    drawDetections(image, [detection([8, 20, 56, 44])], { lineWidth: 4 });
    const out = path.join(dir, `out.${extension}`);
    await writeAnnotatedImage(image, out);
    const metadata = await sharp(out).metadata();
    expect(metadata.format).toBe({ jpg: 'jpeg', JPG: 'jpeg', tif: 'tiff', avif: 'heif' }[extension] ?? extension);
    expect([metadata.width, metadata.height]).toEqual([64, 48]);
    const back = await sharp(out).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const edge = ((30 * 64) + 9) * 3; // inside the 4-px left outline
    const [r, g, b] = back.data.subarray(edge, edge + 3);
    expect(Math.abs(r! - RED[0]!) + Math.abs(g! - RED[1]!) + Math.abs(b! - RED[2]!)).toBeLessThan(60);
  });

  it('keeps the alpha channel of a 4-channel image in PNG', async () => {
    const image = grayImage(16, 16, 4);
    drawDetections(image, [detection([2, 2, 14, 14])], { lineWidth: 1, ...NO_CAPTION });
    const out = path.join(dir, 'alpha.png');
    await writeAnnotatedImage(image, out);
    const back = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect(back.info.channels).toBe(4);
    expect(Array.from(back.data.subarray((8 * 16 + 2) * 4, (8 * 16 + 3) * 4))).toEqual([...RED, 255]);
  });

  it('rejects an unknown or missing extension with ERR_INVALID_ARGUMENT naming it', async () => {
    await expect(writeAnnotatedImage(grayImage(4, 4), path.join(dir, 'a.bmp'))).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringMatching(/a\.bmp.*"\.bmp"/),
    });
    await expect(writeAnnotatedImage(grayImage(4, 4), path.join(dir, 'noext'))).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
      message: expect.stringContaining('(none)'),
    });
  });

  it('reports ERR_OUTPUT_WRITE naming the path when the directory cannot be created or written', async () => {
    const file = path.join(dir, 'a-file.txt');
    await writeFile(file, 'not a directory');
    const underFile = path.join(file, 'out.png');
    await expect(writeAnnotatedImage(grayImage(4, 4), underFile)).rejects.toMatchObject({
      code: 'ERR_OUTPUT_WRITE',
      input: underFile,
      message: expect.stringContaining(underFile),
    });
    const inProc = '/proc/deimv2-cannot-write/out.jpg';
    await expect(writeAnnotatedImage(grayImage(4, 4), inProc)).rejects.toMatchObject({
      code: 'ERR_OUTPUT_WRITE',
      message: expect.stringContaining(inProc),
    });
    await expect(stat(underFile)).rejects.toThrow();
  });
});

describe('outputPathFor', () => {
  it('puts the input basename in an output directory, keeping writable extensions', () => {
    expect(outputPathFor('photos/a.jpg', 'out', true)).toBe(path.join('out', 'a.jpg'));
    expect(outputPathFor('/x/y/b.PNG', '/tmp/o', true)).toBe('/tmp/o/b.PNG');
    expect(outputPathFor('/x/c.heic', '/tmp/o', true)).toBe('/tmp/o/c.jpg');
    expect(outputPathFor('/x/frame', '/tmp/o', true)).toBe('/tmp/o/frame.jpg');
  });

  it('uses an output file as is', () => {
    expect(outputPathFor('photos/a.jpg', 'result.webp', false)).toBe('result.webp');
  });

  it('refuses to overwrite the input', () => {
    expect(() => outputPathFor('photos/a.jpg', 'photos', true)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('photos/a.jpg') }),
    );
    expect(() => outputPathFor('a.png', './a.png', false)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});
