/**
 * Many concurrent decodes of a broken image all give its real reason: libvips's error buffer is
 * shared by the process, and a failing thread could take another's message ("Unknown error", or the
 * same message twice).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { EXAMPLE, MODEL_DIR } from './helpers/paths.js';

let detector: Detector;
beforeAll(async () => {
  detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR });
});
afterAll(async () => detector?.close());

describe('concurrent decode errors', () => {
  it('62 concurrent detect() calls on a truncated JPEG all say "premature end of JPEG image" (before: some "Unknown error")', async () => {
    const truncated = readFileSync(EXAMPLE).subarray(0, 20_000);
    const settled = await Promise.allSettled(Array.from({ length: 62 }, () => detector.detect(truncated)));
    const messages = new Set(settled.map((r) => (r.status === 'rejected' ? (r.reason as Error).message.replace(/^.*?: cannot decode image: /, '') : 'decoded')));
    expect([...messages]).toEqual(['VipsJpeg: premature end of JPEG image']);
  });
});
