/**
 * Tracking on video with real ffmpeg and the real Atto model: `deimv2 detect clip --track` (JSONL
 * with track ids, tracks, counts and a summary; MOT; annotated MP4), the same tracks as
 * `deimv2 track` on the detections of the same clip, the API, and an image sequence.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { CLI, SHARED, ATTO } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

const run = promisify(execFile);
const CAR = path.join(SHARED, 'videos', 'car-detection.mp4');
const FRAMES = 40;

let dir: string;
let clip: string;

beforeAll(() => {
  dir = tempDir('deimv2-track-video-');
  clip = path.join(dir, 'clip.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-i', CAR, '-frames:v', String(FRAMES), '-an', '-c:v', 'libx264', '-preset', 'ultrafast', clip]);
});

const readJsonl = (file: string) => readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

describe('detect <video> --track', () => {
  it('writes track ids, tracks, counts and a summary to the JSONL, MOT lines and an annotated MP4; the same tracks as deimv2 track', async () => {
    const out = path.join(dir, 'annotated.mp4');
    const jsonl = path.join(dir, 'tracked.jsonl');
    const mot = path.join(dir, 'tracked.txt');
    const { stderr } = await run(process.execPath, [CLI, 'detect', clip, '--model', ATTO, '--track', '--threshold', '0.4', '--out', out, '--json', jsonl, '--mot', mot, '--trails', '10', '--line', '0,200,768,200:mid', '--zone', '100,100,400,100,400,400,100,400:box']);
    expect(stderr).toMatch(/tracking: 40 frames, \d+ tracks/);
    expect(stderr).toMatch(/mid\s+all\s+\d+\s+\d+/);
    const lines = readJsonl(jsonl);
    expect(lines).toHaveLength(FRAMES + 1);
    const frames = lines.slice(0, FRAMES);
    const summary = lines[FRAMES].summary;
    expect(summary.frames).toBe(FRAMES);
    expect(summary.lines[0].name).toBe('mid');
    expect(summary.zones[0].name).toBe('box');
    let tracked = 0;
    for (const f of frames) {
      expect(f.counts.lines.mid).toBeDefined();
      expect(f.counts.zones.box.count).toBe(f.counts.zones.box.trackIds.length);
      for (const d of f.detections) {
        expect(d.score).toBeGreaterThanOrEqual(0.4);
        if (d.trackId !== undefined) {
          tracked++;
          expect(f.tracks.map((t: { trackId: number }) => t.trackId)).toContain(d.trackId);
        }
      }
    }
    expect(tracked).toBeGreaterThan(0);
    const motRows = readFileSync(mot, 'utf8').trim().split('\n');
    expect(motRows).toHaveLength(frames.reduce((a: number, f: { tracks: unknown[] }) => a + f.tracks.length, 0));
    const probed = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', out], { encoding: 'utf8' });
    expect(Number(probed.trim())).toBe(FRAMES);

    // Offline on the same clip's detections (threshold 0.1): the same tracks.
    const dets = path.join(dir, 'dets.jsonl');
    await run(process.execPath, [CLI, 'detect', clip, '--model', ATTO, '--threshold', '0.1', '--json', dets, '-q']);
    const offline = path.join(dir, 'offline.jsonl');
    await run(process.execPath, [CLI, 'track', '-d', dets, '--out', offline, '-q']);
    const off = readJsonl(offline);
    expect(off.slice(0, FRAMES).map((f) => f.tracks)).toEqual(frames.map((f: { tracks: unknown }) => f.tracks));
  });

  it('detectVideo(src, { track }) yields tracked frames; the session holds the summary', async () => {
    const detector = await Detector.create({ model: ATTO, threshold: 0.5 });
    try {
      const video = detector.detectVideo(clip, { track: { agnostic: true, lines: ['0,200,768,200'] } });
      let n = 0;
      const ids = new Set<number>();
      for await (const frame of video) {
        n++;
        expect(Array.isArray(frame.tracks)).toBe(true);
        for (const t of frame.tracks!) ids.add(t.trackId);
        for (const d of frame.detections) expect(d.score).toBeGreaterThanOrEqual(0.5);
        expect(frame.counts!.lines.line1).toBeDefined();
      }
      expect(n).toBe(FRAMES);
      expect(video.tracking!.summary().tracks).toBe(ids.size);
    } finally {
      await detector.close();
    }
  });

  it('tracks an image sequence', async () => {
    const seq = path.join(dir, 'seq');
    mkdirSync(seq);
    execFileSync('ffmpeg', ['-v', 'error', '-i', clip, '-frames:v', '12', path.join(seq, '%03d.png')]);
    const jsonl = path.join(dir, 'seq.jsonl');
    await run(process.execPath, [CLI, 'detect', path.join(seq, '%03d.png'), '--model', ATTO, '--track', '--json', jsonl, '-q']);
    const lines = readJsonl(jsonl);
    expect(lines).toHaveLength(13);
    expect(lines.at(-1).summary.frames).toBe(12);
    expect(lines.slice(0, 12).every((l) => Array.isArray(l.tracks))).toBe(true);
  });

  it('refuses bad tracking options before the model loads, and --track on images', async () => {
    const fail = (args: string[]) => run(process.execPath, [CLI, ...args]).then(() => '', (e: { stderr: string; code: number }) => `${e.code} ${e.stderr}`);
    expect(await fail(['detect', clip, '--track', '--line', '1,2,3'])).toMatch(/--line "1,2,3": needs exactly 4 numbers/);
    expect(await fail(['detect', clip, '--mot', path.join(dir, 'x.txt')])).toMatch(/--mot needs --track/);
    expect(await fail(['detect', clip, '--track', '--mot', clip])).toMatch(/would overwrite the input/);
    expect(await fail(['detect', path.join(SHARED, '..', 'shared', 'videos', 'missing.png'), '--track'])).toMatch(/1 deimv2/);
  });
});
