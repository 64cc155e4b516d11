/**
 * Video and stream detection with real ffmpeg and the real Atto model: annotated MP4 output
 * (size, rate, frame count, audio), JSONL, a live stream served by ffmpeg on 127.0.0.1 (frame
 * dropping, stopping), and the bad inputs (missing, not a video, truncated, unreachable, no
 * ffmpeg, unwritable output).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { detectVideo, findFfmpeg, isVideoInput, isLiveSource, runVideoDetect } from '../dist/video/index.js';
import { ROOT, SHARED, MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

const CAR = path.join(SHARED, 'videos', 'car-detection.mp4');
const TRAFFIC = path.join(SHARED, 'videos', 'traffic-1080p-20frames.mp4');

interface Probed { streams: Array<{ codec_type: string; codec_name: string; width?: number; height?: number; r_frame_rate?: string; nb_read_frames?: string }> }

/** Streams of a file as ffprobe sees them, with decoded frame counts (-count_frames). */
function ffprobe(file: string): Probed {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_type,codec_name,width,height,r_frame_rate,nb_read_frames', '-of', 'json', file], { encoding: 'utf8' });
  return JSON.parse(out) as Probed;
}
const videoStream = (p: Probed) => p.streams.find((s) => s.codec_type === 'video')!;

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** ffmpeg serving `CAR` as an MPEG-TS stream over HTTP on 127.0.0.1, at `readrate` x real time. */
async function serveStream(readrate: number, loops: number): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/live.ts`;
  const proc = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-readrate', String(readrate), '-stream_loop', String(loops), '-i', CAR, '-map', '0:v', '-c', 'copy', '-f', 'mpegts', '-listen', '1', url], { stdio: 'ignore' });
  // Wait until the server listens. Connecting to check would use up its one client (-listen 1),
  // so read the kernel's socket table instead (state 0A = LISTEN).
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (let i = 0; i < 200; i++) {
    if (readFileSync('/proc/net/tcp', 'utf8').split('\n').some((l) => l.includes(`:${hexPort} `) && / 0A /.test(l))) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, proc };
}

let detector: Detector;
let dir: string;

beforeAll(async () => {
  detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR });
  dir = tempDir('deimv2-video-');
});
afterAll(async () => {
  await detector?.close();
});

describe('source kinds', () => {
  it('tells videos, sequences and live sources from images', () => {
    expect(isVideoInput('clip.MP4')).toBe(true);
    expect(isVideoInput('frames/%04d.png')).toBe(true);
    expect(isVideoInput('rtsp://cam/1')).toBe(true);
    expect(isVideoInput('/dev/video0')).toBe(true);
    expect(isVideoInput('photo.jpg')).toBe(false);
    expect(isVideoInput('dir/')).toBe(false);
    expect(isLiveSource('https://example.com/live.m3u8')).toBe(true);
    expect(isLiveSource('clip.mp4')).toBe(false);
  });

  it('finds ffmpeg, and says how to get it when there is none', () => {
    const found = findFfmpeg();
    expect('path' in found && found.source).toBe('system');
    const none = findFfmpeg({ PATH: '/nonexistent' });
    expect('error' in none && none.error).toMatch(/ffmpeg not found.*apt-get install ffmpeg/);
  });
});

describe('video files', () => {
  it('writes an annotated H.264 MP4 with the input size, rate, frame count and audio, and one JSON line per frame', async () => {
    const out = path.join(dir, 'car.mp4');
    const jsonl = path.join(dir, 'car.jsonl');
    const summary = await runVideoDetect(detector, CAR, { out, json: jsonl, quiet: true, handleSigint: false });
    expect(summary.processed).toBe(377);
    expect(summary.decodeError).toBeUndefined();

    const probed = ffprobe(out);
    const video = videoStream(probed);
    expect(video).toMatchObject({ codec_name: 'h264', width: 768, height: 432, r_frame_rate: '25/2', nb_read_frames: '377' });
    expect(probed.streams.some((s) => s.codec_type === 'audio')).toBe(true);

    const lines = readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { frame: number; pts: number; detections: Array<{ label: string; box: number[] }> });
    expect(lines).toHaveLength(377);
    expect(lines.map((l) => l.frame)).toEqual([...Array(377).keys()]);
    expect(lines[25]!.pts).toBeCloseTo(2.0, 6);
    // Atto finds something (at score >= 0.4) on most frames of this parking lot, inside the frame.
    expect(lines.filter((l) => l.detections.length > 0).length).toBeGreaterThan(250);
    for (const d of lines.flatMap((l) => l.detections)) {
      expect(d.box[0]).toBeGreaterThanOrEqual(0);
      expect(d.box[2]).toBeLessThanOrEqual(768);
    }
  });

  it('yields frames in order with annotated images, matching single-image detection', async () => {
    const frames = [];
    for await (const f of detectVideo(detector, TRAFFIC, { annotate: true })) frames.push(f);
    expect(frames.map((f) => f.frame)).toEqual([...Array(20).keys()]);
    expect(frames[0]!.image).toMatchObject({ width: 1920, height: 1080, channels: 3 });
    expect(frames[0]!.pts).toBe(0);
    expect(frames[3]!.pts).toBeCloseTo(0.1, 6);
    // The same frame through detect() gives the same detections (order kept by the pipeline).
    const run = detectVideo(detector, TRAFFIC, { returnImage: true });
    let fifth;
    for await (const f of run) if (f.frame === 5) fifth = f;
    const again = await detector.detect({ ...fifth!.image!, data: fifth!.image!.data });
    expect(again.detections).toEqual(fifth!.detections);
  });

  it('reads an image sequence given as a printf pattern', async () => {
    const seq = path.join(dir, 'seq');
    execFileSync('mkdir', ['-p', seq]);
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', TRAFFIC, '-frames:v', '5', '-vf', 'scale=640:360', path.join(seq, 'f%03d.png')]);
    const frames = [];
    for await (const f of detectVideo(detector, path.join(seq, 'f%03d.png'))) frames.push(f);
    expect(frames.map((f) => [f.frame, f.width, f.height])).toEqual([0, 1, 2, 3, 4].map((i) => [i, 640, 360]));
    expect(frames[1]!.pts).toBeCloseTo(1 / 25, 6);
  });

  it('stops on an AbortSignal, leaving a valid partial MP4', async () => {
    const out = path.join(dir, 'stopped.mp4');
    const controller = new AbortController();
    const run = detectVideo(detector, CAR, { output: out, signal: controller.signal });
    let n = 0;
    for await (const _ of run) if (++n === 30) controller.abort();
    expect(run.stats.stopped).toBe(true);
    expect(run.stats.processed).toBeGreaterThanOrEqual(30);
    expect(run.stats.processed).toBeLessThan(377);
    expect(Number(videoStream(ffprobe(out)).nb_read_frames)).toBe(run.stats.processed);
  });
});

describe('live sources', () => {
  it('reads a stream served on 127.0.0.1, drops frames it cannot keep up with, and stops cleanly', async () => {
    // Served at 40x real time (500 FPS): faster than detection can go, so frames must be dropped.
    // Long enough (20 loops: about 15 s at 40x) that a loaded machine still sees frames dropped;
    // stopped once 20 frames came through with some dropped, not after a fixed wall-clock time.
    const { url, proc } = await serveStream(40, 20);
    try {
      const out = path.join(dir, 'live.mp4');
      const controller = new AbortController();
      const run = detectVideo(detector, url, { output: out, signal: controller.signal });
      const indices: number[] = [];
      const timer = setTimeout(() => controller.abort(), 90_000);
      for await (const f of run) {
        indices.push(f.frame);
        if (indices.length >= 20 && run.stats.dropped > 0) controller.abort();
      }
      clearTimeout(timer);
      expect(indices.length).toBeGreaterThan(10);
      for (let i = 1; i < indices.length; i++) expect(indices[i]!).toBeGreaterThan(indices[i - 1]!);
      expect(run.stats.dropped).toBeGreaterThan(0);
      expect(run.stats.processed + run.stats.dropped).toBeLessThanOrEqual(run.stats.decoded);
      expect(Number(videoStream(ffprobe(out)).nb_read_frames)).toBe(run.stats.processed);
    } finally {
      proc.kill('SIGKILL');
    }
  });

  it('finishes the output when the CLI run gets SIGINT', async () => {
    const { url, proc } = await serveStream(1, 5);
    const out = path.join(dir, 'sigint.mp4');
    const jsonl = path.join(dir, 'sigint.jsonl');
    const script = `
      const { Detector } = await import(${JSON.stringify(path.join(ROOT, 'dist/index.js'))});
      const { runVideoDetect } = await import(${JSON.stringify(path.join(ROOT, 'dist/video/index.js'))});
      const d = await Detector.create({ model: 'atto', modelDir: ${JSON.stringify(MODEL_DIR)} });
      process.stderr.write('ready\\n');
      try {
        const s = await runVideoDetect(d, ${JSON.stringify(url)}, { out: ${JSON.stringify(out)}, json: ${JSON.stringify(jsonl)} });
        console.log(JSON.stringify({ processed: s.processed, stopped: s.stopped }));
      } finally {
        await d.close();
      }`;
    try {
      // A script file, not -e: worker threads inherit the parent's execArgv (--input-type included).
      const scriptFile = path.join(dir, 'sigint-run.mjs');
      writeFileSync(scriptFile, script);
      const child = spawn(process.execPath, [scriptFile], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const closed = new Promise((resolve) => child.on('close', resolve));
      // Ctrl-C once the detector is up and frames have flowed for a while.
      for (let i = 0; i < 600 && !stderr.includes('ready') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      // Ctrl-C once a few frames are in the JSONL (not after a fixed time: a loaded machine may not have one yet).
      // The JSONL is written under a temporary name beside it (.sigint.jsonl.PID-N.partial) until it closes.
      const lines = () => {
        const name = readdirSync(dir).find((n) => n.startsWith('.sigint.jsonl.') && n.endsWith('.partial'));
        return name && existsSync(path.join(dir, name)) ? readFileSync(path.join(dir, name), 'utf8').split('\n').length - 1 : 0;
      };
      for (let i = 0; i < 1200 && lines() < 3 && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      child.kill('SIGINT');
      const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await closed;
      clearTimeout(killer);
      expect(code, stderr).toBe(0);
      const result = JSON.parse(stdout) as { processed: number; stopped: boolean };
      expect(result.stopped).toBe(true);
      expect(result.processed).toBeGreaterThan(0);
      expect(stderr).toMatch(/stopping/);
      expect(Number(videoStream(ffprobe(out)).nb_read_frames)).toBe(result.processed);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});

describe('bad input', () => {
  const codeOf = async (source: string, options = {}) => {
    try {
      for await (const _ of detectVideo(detector, source, options));
      return 'no error';
    } catch (e) {
      return `${(e as { code: string }).code}: ${(e as Error).message}`;
    }
  };

  it('a missing file', async () => {
    expect(await codeOf(path.join(dir, 'nope.mp4'))).toMatch(/^ERR_INPUT_NOT_FOUND: Video not found: .*nope\.mp4/);
  });

  it('a file that is not a video', async () => {
    const fake = path.join(dir, 'fake.mp4');
    writeFileSync(fake, 'this is not a video\n'.repeat(100));
    expect(await codeOf(fake)).toMatch(/^ERR_VIDEO: Could not (decode|open) .*fake\.mp4.*Invalid data/);
  });

  it('a truncated MP4: the frames that decode are processed and the loss is reported', async () => {
    const whole = path.join(dir, 'whole.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=4', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '10', '-pix_fmt', 'yuv420p', '-movflags', '+faststart', whole]);
    truncateSync(whole, Math.floor(statSync(whole).size * 0.5));
    const out = path.join(dir, 'truncated-out.mp4');
    const summary = await runVideoDetect(detector, whole, { out, quiet: true, handleSigint: false });
    expect(summary.processed).toBeGreaterThan(5);
    expect(summary.processed).toBeLessThan(100);
    expect(summary.missingFrames).toBe(100 - summary.processed);
    expect(Number(videoStream(ffprobe(out)).nb_read_frames)).toBe(summary.processed);

    // Cut before its index (moov at the end): nothing decodes, so it is an error.
    const noIndex = path.join(dir, 'noindex.mp4');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=25:duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', noIndex]);
    truncateSync(noIndex, Math.floor(statSync(noIndex).size * 0.7));
    expect(await codeOf(noIndex)).toMatch(/^ERR_VIDEO: Could not decode .*noindex\.mp4.*moov atom not found/);
  });

  it('an unreachable stream, within a bounded wait', async () => {
    const port = await freePort();
    const t0 = Date.now();
    expect(await codeOf(`http://127.0.0.1:${port}/live.ts`)).toMatch(/^ERR_VIDEO: Could not (decode|open) http:\/\/127\.0\.0\.1.*(refused|error)/i);
    // A server that accepts and then says nothing: the open timeout ends it.
    const silent = net.createServer((socket) => socket.on('error', () => undefined)).listen(0, '127.0.0.1');
    await new Promise((r) => silent.once('listening', r));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      expect(await codeOf(`http://127.0.0.1:${silentPort}/live.ts`, { openTimeoutMs: 2000 })).toMatch(/^ERR_VIDEO: Could not (decode|open) http:\/\/127\.0\.0\.1/);
    } finally {
      silent.close();
    }
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('an output path that cannot be written (its folder would be under a file)', async () => {
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    expect(await codeOf(CAR, { output: path.join(file, 'out.mp4') })).toMatch(/^ERR_OUTPUT_WRITE: Cannot write .*a-file\/out\.mp4: .*a-file is not a folder/);
  });

  it('no ffmpeg anywhere', () => {
    const script = `
      const { detectVideo } = await import(${JSON.stringify(path.join(ROOT, 'dist/video/index.js'))});
      try { for await (const _ of detectVideo({ detect: async () => ({}) }, ${JSON.stringify(CAR)})); }
      catch (e) { console.log(e.code + ': ' + e.message); }`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    expect(out).toMatch(/^ERR_FFMPEG_NOT_FOUND: ffmpeg not found/);
  });
});
