/**
 * Variable frame rate: a real VFR file (80 frames of the car video, the first 40 at 10 FPS and the
 * next 40 at 30 FPS, made by ffmpeg with uneven setpts steps) keeps its frames and timestamps: the
 * JSON lines have one line per source frame, `frame` = the source's index and `pts` = ffprobe's
 * pts_time, and the annotated MP4 has the same frame count and pts (before: 161 frames at a
 * constant 30 FPS, duplicated ones included).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { runVideoDetect } from '../dist/video/index.js';
import { TrackSession } from '../src/track/index.js';
import { SHARED, MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

const CAR = path.join(SHARED, 'videos', 'car-detection.mp4');

/** ffprobe's presentation times (seconds) of every video frame of `file`, in order. */
function framePts(file: string): number[] {
  const out = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'frame=pts_time', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.replace(/,/g, '').trim()).filter(Boolean).map(Number);
}

let detector: Detector;
let dir: string;
let vfr: string;

beforeAll(async () => {
  detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR });
  dir = tempDir('deimv2-vfr-');
  vfr = path.join(dir, 'vfr.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-i', CAR, '-an', '-frames:v', '80',
    '-vf', "setpts='if(lt(N,40),N*3,120+(N-40))/(30*TB)'", '-fps_mode', 'passthrough', '-enc_time_base', '1:90000',
    '-video_track_timescale', '90000', '-c:v', 'libx264', '-preset', 'ultrafast', vfr]);
});
afterAll(async () => {
  await detector?.close();
});

describe('variable frame rate', () => {
  it('the test file is VFR: 80 frames, steps of 0.1 s then 1/30 s', () => {
    const pts = framePts(vfr);
    expect(pts).toHaveLength(80);
    expect(pts[1]! - pts[0]!).toBeCloseTo(0.1, 3);
    expect(pts[79]! - pts[78]!).toBeCloseTo(1 / 30, 3);
  });

  it('JSON lines and the annotated MP4 keep the source frames and timestamps', async () => {
    const json = path.join(dir, 'vfr.jsonl');
    const out = path.join(dir, 'vfr.annotated.mp4');
    const summary = await runVideoDetect(detector, vfr, { json, out, quiet: true, handleSigint: false });
    const source = framePts(vfr);
    const lines = readFileSync(json, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { frame: number; pts: number });
    expect(summary.processed).toBe(80);
    expect(lines.map((l) => l.frame)).toEqual(source.map((_, i) => i));
    lines.forEach((l, i) => expect(Math.abs(l.pts - source[i]!)).toBeLessThan(1e-6));
    const written = framePts(out);
    expect(written).toHaveLength(80);
    // within the source's time base (1/90000 s)
    written.forEach((t, i) => expect(Math.abs(t - source[i]!)).toBeLessThanOrEqual(1 / 90000 + 1e-9));
    expect(summary.decodeError).toBeUndefined();
  });
});

describe('tracking a variable-rate video', () => {
  it('zone dwell follows the frames\' real times; at a constant rate it is frames / frame rate', () => {
    const person = { classId: 0, categoryId: 1, label: 'person', score: 0.9, box: [100, 100, 140, 180] as [number, number, number, number] };
    const run = (times: number[] | undefined) => {
      const session = new TrackSession({ zones: ['0,0,1000,0,1000,1000,0,1000:all'], frameRate: 30 });
      for (let f = 0; f < 20; f++) session.update(f, [person], times?.[f]);
      return session.summary().zones[0]!.dwell[0]!;
    };
    // 10 frames 0.1 s apart, then 10 frames 1/30 s apart; each frame in the zone counts the time
    // since the frame before (the first frame of the video 1/30 s): 1/30 + 10 x 0.1 + 9/30 s.
    const vfrTimes = Array.from({ length: 20 }, (_, f) => (f < 10 ? f * 0.1 : 1 + (f - 10) / 30));
    const vfr = run(vfrTimes);
    expect(vfr.frames).toBe(20);
    expect(vfr.seconds).toBeCloseTo(1 / 30 + 1 + 9 / 30, 3);
    // A constant 30 FPS, with or without times: frames / 30 exactly as before.
    const cfr = run(Array.from({ length: 20 }, (_, f) => f / 30));
    expect(cfr.seconds).toBe(Math.round((cfr.frames / 30) * 1000) / 1000);
    expect(run(undefined)).toEqual(cfr);
  });
});
