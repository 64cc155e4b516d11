/**
 * A stream's frames in the service (issue 17, section 6): the pipeline hands each annotated frame
 * to the stream, which keeps the newest for JPEGs. Before, every frame's memory was left to the GC
 * (a 768x432 frame is 1 MB: GC time on every frame); now the previous frame's memory goes back to
 * the decoder, unless a reader took it (latestImage(): a JPEG being made), whose pixels then stay.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkStream } from '../dist/serve/index.js';
import { StreamRunner } from '../dist/serve/stream.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-serve-frames-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('a stream\'s frames', () => {
  it('reuses the memory of frames nobody took; a frame taken with latestImage() keeps its pixels', async () => {
    const video = path.join(tmp, 'clip.mkv');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-frames:v', '30', '-c:v', 'png', video]);
    const buffers = new Set<ArrayBufferLike>();
    let taken: { hash: string; data: Uint8Array; frame: number } | undefined;
    const runner: StreamRunner = new StreamRunner(checkStream({ id: 'f', source: video }, { allowDirs: [tmp] }), {
      detect: async (image) => ({ width: image.width, height: image.height, detections: [] }),
      threshold: 0.5,
      maxMemory: 1 << 30,
      runners: 2,
      log: () => {},
      onFrame: (stream, frame) => {
        buffers.add(frame.image!.data.buffer);
        if (frame.frame === 10) {
          const latest = stream.latestImage()!;
          expect(latest.frame.frame).toBe(10);
          taken = { hash: sha(latest.image.data), data: latest.image.data, frame: 10 };
        }
      },
      onDropped: () => {},
      onReconnect: () => {},
      idle: () => {},
      batch: 1,
    }, { stallMs: 5000, backoffMs: 1000, maxBackoffMs: 30_000, openTimeoutMs: 10_000 });
    runner.start();
    for (let i = 0; i < 600 && runner.state !== 'ended' && runner.state !== 'failed'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(runner.state).toBe('ended');
    expect(runner.frames).toBe(30);
    // Frames nobody took were reused (before: 30 buffers, one per frame).
    expect(buffers.size).toBeLessThan(20);
    // The taken frame was never reused: its pixels are frame 10's still.
    expect(taken).toBeDefined();
    expect(sha(taken!.data)).toBe(taken!.hash);
    expect(runner.latest!.frame.frame).toBe(29);
    await runner.stop();
  });
});
