/**
 * The decoder's frames come over a Unix socket pair read into one reused buffer (src/video/
 * frame-socket.ts): every frame's bytes must be exactly ffmpeg's rawvideo output, with the
 * consumer slower than ffmpeg (the socket paused and resumed) and with a stop half way; no
 * socket folder is left in the temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameDecoder } from '../dist/video/decoder.js';
import { openFrameSocket } from '../dist/video/frame-socket.js';
import { requireFfmpeg } from '../dist/video/ffmpeg.js';
import { SHARED } from './helpers/paths.js';

const CAR = path.join(SHARED, 'videos', 'car-detection.mp4');
const socketDirs = () => readdirSync(os.tmpdir()).filter((f) => f.startsWith('deimv2-frames-'));

/** ffmpeg's own rgb24 frames of `file`, one hash each. */
function referenceHashes(file: string): string[] {
  const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v:0', '-fps_mode', 'passthrough', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1'], { maxBuffer: 1 << 30 });
  const size = 768 * 432 * 3;
  expect(raw.length % size).toBe(0);
  return Array.from({ length: raw.length / size }, (_, i) => createHash('sha1').update(raw.subarray(i * size, (i + 1) * size)).digest('hex'));
}

describe('frames over the socket pair', () => {
  it.runIf(process.platform !== 'win32')('a socket pair is made, and its folder is gone at once', async () => {
    const before = socketDirs().length;
    const socket = await openFrameSocket(() => {});
    expect(socket).toBeDefined();
    expect(socketDirs().length).toBe(before);
    socket!.detach();
    socket!.reader.destroy();
  });

  it('every frame is ffmpeg\'s rawvideo output, byte for byte, with a slow consumer', async () => {
    const want = referenceHashes(CAR);
    const decoder = await FrameDecoder.open(requireFfmpeg(), CAR, { live: false });
    const got: string[] = [];
    let n = 0;
    for await (const frame of decoder) {
      got.push(createHash('sha1').update(frame.data).digest('hex'));
      // Slower than ffmpeg now and then: the queue fills, the socket is paused and resumed.
      if (n++ % 50 === 0) await new Promise((r) => setTimeout(r, 30));
      decoder.recycle(frame);
    }
    expect(decoder.decodeError).toBeUndefined();
    expect(got.length).toBe(377);
    expect(got).toEqual(want);
  }, 60_000);

  it('where no socket pair can be made (a temporary folder too deep for a socket path), ffmpeg\'s pipe gives the same frames', async () => {
    const deep = path.join(os.tmpdir(), `deimv2-deep-${process.pid}-${'d'.repeat(60)}`, 'e'.repeat(60));
    mkdirSync(deep, { recursive: true });
    const saved = process.env.TMPDIR;
    let decoder: FrameDecoder;
    try {
      process.env.TMPDIR = deep;
      expect(await openFrameSocket(() => {})).toBeUndefined();
      decoder = await FrameDecoder.open(requireFfmpeg(), CAR, { live: false });
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
    expect(readdirSync(deep)).toEqual([]);
    const got: string[] = [];
    for await (const frame of decoder) {
      got.push(createHash('sha1').update(frame.data).digest('hex'));
      decoder.recycle(frame);
    }
    expect(got).toEqual(referenceHashes(CAR));
    rmSync(path.dirname(deep), { recursive: true, force: true });
  }, 60_000);

  it('a consumer that stops reading holds ffmpeg back: frames decoded stay a few ahead (the socket is paused)', async () => {
    const decoder = await FrameDecoder.open(requireFfmpeg(), CAR, { live: false, maxQueue: 6 });
    const first = await decoder.next();
    expect(first).toBeDefined();
    // ffmpeg decodes 377 frames in well under a second: unpaused, it would be far ahead by now.
    await new Promise((r) => setTimeout(r, 800));
    expect(decoder.decoded - 1).toBeLessThanOrEqual(6 + 1);
    let n = 1;
    for (let f = await decoder.next(); f; f = await decoder.next()) n++;
    expect(n).toBe(377);
  }, 60_000);

  it('a stop half way ends ffmpeg and leaves no socket folder', async () => {
    const before = socketDirs().length;
    const decoder = await FrameDecoder.open(requireFfmpeg(), CAR, { live: false });
    let n = 0;
    for await (const frame of decoder) {
      decoder.recycle(frame);
      if (++n === 40) break;
    }
    expect(n).toBe(40);
    expect(socketDirs().length).toBe(before);
  }, 60_000);
});
