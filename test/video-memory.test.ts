/**
 * Video frames under the pixel budget (issue 9, section 3). Decoded frames live in shared memory
 * that pool workers read in place, and a frame never handed out is reused for the next one:
 * before, every frame of a video stayed in memory until a GC (a 6 MB video of 16000x16000 frames
 * peaked at 6.7 GB in deimv2 alone; `node bench/memory.js --images 0 --video-case` measures it).
 * These tests check what that reuse must never break: results with a budget that holds one frame
 * equal the default run's, frames handed out (returnImage) stay as they were, and the MP4 gets
 * exactly the frames drawn.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { detectVideo } from '../dist/video/index.js';
import { MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { attoForFile } from './helpers/detector.js';

const dir = tempDir('deimv2-video-memory-');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** A test-pattern clip (frames differ from each other), lossless so every decode is the same. */
function clip(name: string, size: string, frames: number): string {
  const file = path.join(dir, name);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=10`, '-frames:v', String(frames), '-c:v', 'png', file]);
  return file;
}

const atto = attoForFile();

describe('video frames and the memory budget', () => {
  it('a budget smaller than one frame (2400x2400 = 17 MB, budget 16 MiB) gives the default run\'s results', async () => {
    const video = clip('big.mkv', '2400x2400', 6);
    const small = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', maxMemory: 16 * 2 ** 20, threshold: 0.1 });
    const loose = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu', threshold: 0.1 });
    try {
      const run = async (d: Detector) => {
        const frames = [];
        for await (const f of detectVideo(d, video)) frames.push({ frame: f.frame, detections: f.detections });
        return frames;
      };
      const [a, b] = [await run(small), await run(loose)];
      expect(a.length).toBe(6);
      expect(a).toEqual(b);
    } finally {
      await Promise.all([small.close(), loose.close()]);
    }
  });

  it('frames handed out (returnImage) are never reused: each keeps its own pixels after the run', async () => {
    const video = clip('handed.mkv', '320x240', 12);
    const seen: Array<{ image: Uint8Array; hash: string }> = [];
    for await (const f of detectVideo(atto(), video, { returnImage: true })) seen.push({ image: f.image!.data, hash: sha(f.image!.data) });
    expect(seen.length).toBe(12);
    expect(new Set(seen.map((s) => s.hash)).size).toBe(12);
    for (const s of seen) expect(sha(s.image)).toBe(s.hash);
  });

  it('images given back with recycle() are reused for later frames, once each; other buffers are ignored; results do not change', async () => {
    const video = clip('recycled.mkv', '320x240', 24);
    const plain: unknown[] = [];
    for await (const f of detectVideo(atto(), video)) plain.push({ frame: f.frame, detections: f.detections });
    const run = detectVideo(atto(), video, { returnImage: true });
    const buffers = new Set<ArrayBufferLike>();
    const hashes = new Set<string>();
    const results: unknown[] = [];
    const stranger = Buffer.alloc(320 * 240 * 3);
    for await (const f of run) {
      results.push({ frame: f.frame, detections: f.detections });
      hashes.add(sha(f.image!.data));
      buffers.add(f.image!.data.buffer);
      run.recycle(f.image!);
      run.recycle(f.image!); // a second time: ignored (two frames would share one buffer)
      run.recycle({ data: stranger, width: 320, height: 240, channels: 3 }); // not this run's: ignored
    }
    expect(results).toEqual(plain);
    expect(hashes.size).toBe(24); // every frame its own pixels when it was handed out
    // Before recycle(), every frame had a buffer of its own (24); now the frames in flight's worth are reused.
    expect(buffers.size).toBeLessThan(24);
    expect(buffers.has(stranger.buffer)).toBe(false);
  });

  it('sharedFrames: frames are decoded into shared memory (workers read them in place) and results do not change', async () => {
    const video = clip('shared.mkv', '320x240', 8);
    const plain: unknown[] = [];
    for await (const f of detectVideo(atto(), video)) plain.push({ frame: f.frame, detections: f.detections });
    const shared: unknown[] = [];
    let inShared = 0;
    for await (const f of detectVideo(atto(), video, { sharedFrames: true, returnImage: true })) {
      if (Object.prototype.toString.call(f.image!.data.buffer) === '[object SharedArrayBuffer]') inShared++;
      shared.push({ frame: f.frame, detections: f.detections });
    }
    expect(shared).toEqual(plain);
    // Every frame, the first ones too (before, frames decoded ahead while the file was probed were not).
    expect(inShared).toBe(8);
  });

  it('the MP4 gets exactly the frames drawn, whether or not frames are reused (tiny frames too)', async () => {
    const video = clip('tiny.mkv', '64x48', 30);
    const md5s = (file: string) => execFileSync('ffmpeg', ['-v', 'error', '-i', file, '-map', '0:v', '-f', 'framemd5', '-'], { encoding: 'utf8' }).split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    const reused = path.join(dir, 'reused.mp4');
    const kept = path.join(dir, 'kept.mp4');
    for await (const _ of detectVideo(atto(), video, { output: reused }));
    // With returnImage every frame is handed out, so none is reused.
    for await (const _ of detectVideo(atto(), video, { output: kept, returnImage: true }));
    const [a, b] = [md5s(reused), md5s(kept)];
    expect(a.length).toBe(30);
    expect(a).toEqual(b);
  });
});
