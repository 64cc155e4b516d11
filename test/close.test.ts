/**
 * close() settles within a bounded time whatever is running: here, decodes of 16383x16383 PNGs
 * (3.5 MB each, 805 MB decoded, seconds each) are in flight; workers that do not finish within the
 * grace period are terminated. Work in flight is rejected with ERR_CLOSED, and the detector
 * refuses new work.
 */
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { ATTO } from './helpers/paths.js';

/** An all-black side x side RGB PNG, made directly (zlib level 1: fast to make, slow to decode). */
function blackPng(side: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(zlib.crc32(body), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, deflate, no filter method, no interlace
  const rows = Buffer.alloc((1 + 3 * side) * side); // filter byte 0 and black pixels on every row
  const idat = zlib.deflateSync(rows, { level: 1 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

describe('close()', () => {
  it('settles within a bounded time while large decodes are running, and rejects the work in flight', async () => {
    const png = blackPng(16383);
    const detector = await Detector.create({ model: ATTO, backend: 'cpu', threads: 1 });
    const started = performance.now();
    const work = [0, 1, 2, 3].map(() => detector.detect(png).then(() => 'done', (e: { code?: string }) => e.code));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const t0 = performance.now();
    const closing = detector.close();
    expect(detector.close()).toBe(closing);
    await closing;
    const closeMs = performance.now() - t0;
    const outcomes = await Promise.all(work);
    // Four such decodes take several seconds each here; close() waited for none of them.
    expect(closeMs).toBeLessThan(4500);
    expect(outcomes).toEqual(['ERR_CLOSED', 'ERR_CLOSED', 'ERR_CLOSED', 'ERR_CLOSED']);
    expect(performance.now() - started).toBeLessThan(6000);
    await expect(detector.detect(png)).rejects.toMatchObject({ code: 'ERR_CLOSED' });
  }, 60_000);

  it('closes promptly when idle, twice, and with the single layout', async () => {
    for (const layout of ['pool', 'single'] as const) {
      const detector = await Detector.create({ model: ATTO, backend: 'cpu', layout, threads: 2 });
      const t0 = performance.now();
      await Promise.all([detector.close(), detector.close()]);
      expect(performance.now() - t0).toBeLessThan(1500);
    }
  });
});
