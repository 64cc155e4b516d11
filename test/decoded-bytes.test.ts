/**
 * The pixel budget's estimate of an image's decoded bytes: a JPEG's is read from its frame header
 * in JavaScript (no sharp metadata() call per image); it must equal what sharp's header says.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { decodedBytes } from '../dist/pool/worker-core.js';
import { COCO_IMAGES, EXAMPLE } from './helpers/paths.js';

const sharp = createRequire(import.meta.url)('sharp');

async function fromMetadata(bytes: Buffer): Promise<number> {
  const m = await sharp(bytes, { pages: 1 }).metadata();
  return m.width * (m.pageHeight ?? m.height) * (m.space === 'cmyk' ? 7 : 3);
}

describe('decodedBytes', () => {
  it('equals the sharp header estimate for COCO JPEGs, grey, CMYK and PNG inputs', async () => {
    const files = [EXAMPLE, ...readdirSync(COCO_IMAGES).filter((f) => f.endsWith('.jpg')).slice(0, 20).map((f) => path.join(COCO_IMAGES, f))];
    const base = sharp(readFileSync(EXAMPLE)).resize(97, 61);
    const inputs = [
      ...files.map((f) => readFileSync(f)),
      await base.clone().grayscale().jpeg().toBuffer(),
      await base.clone().toColourspace('cmyk').jpeg().toBuffer(),
      await base.clone().png().toBuffer(),
    ];
    for (const bytes of inputs) expect(await decodedBytes(bytes)).toBe(await fromMetadata(bytes));
    // A CMYK JPEG is 4 bytes a pixel decoded, then 3 converted: 7.
    expect(await decodedBytes(inputs.at(-2)!)).toBe(97 * 61 * 7);
    // Not an image: 0 (the decode says why).
    expect(await decodedBytes(Buffer.from('plain text'))).toBe(0);
  });
});
