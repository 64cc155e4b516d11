/**
 * Video whose frames are tiny (a side under 10 px) or odd-sized, and a file whose audio is shorter
 * than its video: the run settles, encodes every frame, and the MP4 and the JSON lines agree.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { detectVideo } from '../dist/video/index.js';
import { deimv2 } from './helpers/cli.js';
import { tempDir } from './helpers/images.js';
import { MODEL_DIR } from './helpers/paths.js';

const dir = tempDir('deimv2-sizes-');
const clip = (name: string, args: string[]) => {
  const file = path.join(dir, name);
  execFileSync('ffmpeg', ['-v', 'error', '-y', ...args, file]);
  return file;
};
const probe = (file: string) =>
  execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,width,height', '-of', 'csv=p=0', file], { encoding: 'utf8' }).trim();
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"frame"')).length;

let tiny1: string, tiny8: string, odd: string, shortAudio: string;
let detector: Detector;
beforeAll(async () => {
  tiny1 = clip('v1x1.mp4', ['-f', 'lavfi', '-i', 'testsrc=size=1x1:rate=10', '-t', '1', '-pix_fmt', 'yuv444p', '-c:v', 'libx264']);
  tiny8 = clip('v8x8.mp4', ['-f', 'lavfi', '-i', 'testsrc=size=8x8:rate=10', '-t', '1', '-pix_fmt', 'yuv444p', '-c:v', 'libx264']);
  odd = clip('odd501.avi', ['-f', 'lavfi', '-i', 'testsrc=size=501x375:rate=10', '-t', '1', '-c:v', 'mpeg4']);
  shortAudio = clip('short-audio.mp4', ['-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-f', 'lavfi', '-i', 'sine=d=1.45', '-t', '3', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest']);
  detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR });
});
afterAll(async () => {
  await detector?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('frame sizes', () => {
  it('detectVideo settles on 1x1 and 8x8 frames (it used to wait forever)', async () => {
    for (const [file, size] of [[tiny1, 1], [tiny8, 8]] as const) {
      const frames = [];
      for await (const f of detectVideo(detector, file)) frames.push(f);
      expect(frames.length).toBe(10);
      expect(frames[0]!.width).toBe(size);
      expect(frames[0]!.height).toBe(size);
    }
  });

  it('deimv2 detect encodes tiny and odd-sized frames (odd sides padded by one black pixel), MP4 frames = JSON lines', async () => {
    for (const [file, frames, size] of [[tiny1, 10, '2,2'], [tiny8, 10, '8,8'], [odd, 10, '502,376']] as const) {
      const out = path.join(dir, `${path.basename(file)}.out.mp4`);
      const json = path.join(dir, `${path.basename(file)}.out.jsonl`);
      const r = await deimv2(['detect', file, '--out', out, '--json', json, '--backend', 'cpu', '--quiet']);
      expect(r.stderr).not.toMatch(/ERR_|rror/);
      expect(r.code).toBe(0);
      expect(probe(out)).toBe(`${size},${frames}`);
      expect(lines(json)).toBe(frames);
    }
  });

  it('an audio track shorter than the video cuts no video frame (MP4 frames = JSON lines = source frames)', async () => {
    const out = path.join(dir, 'short.out.mp4');
    const json = path.join(dir, 'short.out.jsonl');
    const r = await deimv2(['detect', shortAudio, '--out', out, '--json', json, '--backend', 'cpu', '--quiet']);
    expect(r.code).toBe(0);
    expect(existsSync(out)).toBe(true);
    expect(probe(out)).toBe('320,240,30');
    expect(lines(json)).toBe(30);
  });
});
