/**
 * Hostile and surprising video inputs (issue 19): files cut at 30% and 70%, a zeroed or missing
 * moov atom, a resolution change mid-stream, audio-only files, a stream with no frame that
 * decodes, animated GIF and WebP, a FIFO, and outputs that cannot be written. Each gives a typed
 * error naming the file and the problem, or the frames that decoded with a warning saying how
 * many of how many; never a hang, a crash, an ffmpeg left running, or a partial MP4 under the
 * output's name. Files are made here with ffmpeg (small: 320x240, 3 s at 10 FPS).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectVideo, runVideoDetect } from '../dist/video/index.js';
import { failureReason } from '../dist/video/decoder.js';
import { deimv2 } from './helpers/cli.js';
import { attoForFile } from './helpers/detector.js';
import { tempDir } from './helpers/images.js';

const dir = tempDir('deimv2-hostile-');
const file = (name: string) => path.join(dir, name);
const ffmpeg = (...args: string[]) => execFileSync('ffmpeg', ['-v', 'error', '-y', ...args]);
const frames = (f: string) => Number(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', f], { encoding: 'utf8' }).trim());
const cut = (from: string, to: string, share: number) => {
  const bytes = readFileSync(file(from));
  writeFileSync(file(to), bytes.subarray(0, Math.floor(bytes.length * share)));
};

/** Processes still running whose command line names a file under `dir` (an ffmpeg left behind). */
function leftRunning(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmd.includes(dir) && /ffmpeg|ffprobe/.test(cmd)) found.push(cmd);
    } catch {
      // gone
    }
  }
  return found;
}

async function codeOf(source: string): Promise<string> {
  try {
    for await (const _ of detectVideo(atto(), source)) {
      // frames are not the point
    }
    return 'no error';
  } catch (e) {
    const err = e as { code?: string; message: string };
    return `${err.code}: ${err.message}`;
  }
}

const atto = attoForFile();

beforeAll(() => {
  // 20 frames at 10 FPS with audio; a copy with its index (moov) first, so a cut copy still decodes.
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-f', 'lavfi', '-i', 'sine=d=2', '-t', '2', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', file('clip.mp4'));
  ffmpeg('-i', file('clip.mp4'), '-c', 'copy', '-movflags', '+faststart', file('front.mp4'));
  cut('front.mp4', 'front-30.mp4', 0.3);
  cut('front.mp4', 'front-70.mp4', 0.7);
  cut('clip.mp4', 'end-70.mp4', 0.7); // moov at the end, cut off
  // The moov atom's contents zeroed (its header kept).
  const zeroed = readFileSync(file('front.mp4'));
  const moov = zeroed.indexOf('moov');
  zeroed.fill(0, moov + 4, moov - 4 + zeroed.readUInt32BE(moov - 4));
  writeFileSync(file('moov-zeroed.mp4'), zeroed);
  // Two resolutions in one Matroska file (a concatenation), and audio-only files.
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file('a.ts'));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file('b.ts'));
  writeFileSync(file('list.txt'), `file '${file('a.ts')}'\nfile '${file('b.ts')}'\n`);
  ffmpeg('-f', 'concat', '-safe', '0', '-i', file('list.txt'), '-c', 'copy', file('two-sizes.mkv'));
  ffmpeg('-f', 'lavfi', '-i', 'sine=d=1', file('voice.m4a'));
  ffmpeg('-f', 'lavfi', '-i', 'sine=d=1', '-c:a', 'aac', file('sound.mp4'));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-frames:v', '0', '-c:v', 'libx264', file('no-frames.mp4'));
  // A header declaring 15000x15000 frames, followed by far too few bytes for one.
  writeFileSync(file('huge.y4m'), Buffer.concat([Buffer.from('YUV4MPEG2 W15000 H15000 F10:1 Ip A1:1 C420jpeg\nFRAME\n'), Buffer.alloc(100_000, 0x80)]));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '1', file('anim.gif'));
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=10', '-t', '1', '-loop', '0', file('anim.webp'));
  // A display matrix of 90 degrees in the track header (what a phone writes for a portrait video).
  const rotated = readFileSync(file('front.mp4'));
  const tkhd = rotated.indexOf('tkhd');
  const matrix = tkhd + 4 + 4 + (rotated[tkhd + 4] === 0 ? 20 : 32) + 16;
  [0, 0x10000, 0, 0xffff0000, 0, 0, 0, 0, 0x40000000].forEach((v, i) => rotated.writeUInt32BE(v, matrix + 4 * i));
  writeFileSync(file('rotated.mp4'), rotated);
  ffmpeg('-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10', '-frames:v', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file('one.mp4'));
  execFileSync('mkfifo', [file('pipe.mp4')]);
  symlinkSync('/dev/full', file('full.mp4'));
  symlinkSync('/dev/full', file('full.jsonl'));
}, 60_000);

afterAll(() => {
  execFileSync('rm', ['-rf', dir]);
});

describe('damaged files (API)', () => {
  it('cut at 30% and 70% with the index first: the frames that decode, and how many of 20 were read', async () => {
    for (const name of ['front-30.mp4', 'front-70.mp4']) {
      const run = detectVideo(atto(), file(name));
      let n = 0;
      for await (const _ of run) n++;
      expect(n, name).toBeGreaterThan(0);
      expect(n, name).toBeLessThan(20);
      expect(run.stats.missingFrames, name).toBe(20 - n);
      expect(run.stats.decodeError, name).toBeTruthy();
      expect(run.stats.decodeError, name).not.toMatch(/@ 0x/); // ffmpeg's "[mov,mp4 @ 0x55...]" prefix is left out
    }
  });

  it('no index: cut before the moov at the end, or the moov zeroed, is ERR_VIDEO saying so', async () => {
    expect(await codeOf(file('end-70.mp4'))).toMatch(/^ERR_VIDEO: Could not decode .*end-70\.mp4: moov atom not found: .*truncated or was never finished/);
    expect(await codeOf(file('moov-zeroed.mp4'))).toMatch(/^ERR_VIDEO: Could not decode .*moov-zeroed\.mp4: it has no video stream \(no stream could be read: an empty, unfinished or damaged file\)$/);
  });

  it('audio only, and a video track with no frame: ERR_VIDEO "no video stream" (was "ffmpeg exited with code 1")', async () => {
    expect(await codeOf(file('voice.m4a'))).toMatch(/^ERR_VIDEO: Could not decode .*voice\.m4a: it has no video stream \(audio only\)$/);
    expect(await codeOf(file('sound.mp4'))).toMatch(/^ERR_VIDEO: Could not decode .*sound\.mp4: it has no video stream \(audio only\)$/);
    expect(await codeOf(file('no-frames.mp4'))).toMatch(/^ERR_VIDEO: Could not decode .*no-frames\.mp4: it has no video stream/);
  });

  it('a declared 15000x15000 stream with no whole frame is ERR_VIDEO (it was an empty success: 0 frames, exit 0)', async () => {
    expect(await codeOf(file('huge.y4m'))).toMatch(/^ERR_VIDEO: Could not decode .*huge\.y4m: its 15000x15000 video stream has no frame that decodes/);
  });

  it('a resolution change mid-stream: every frame at the first size, and stats.sizeChanged says from which frame', async () => {
    const run = detectVideo(atto(), file('two-sizes.mkv'));
    const sizes = new Set<string>();
    let n = 0;
    for await (const f of run) {
      sizes.add(`${f.width}x${f.height}`);
      n++;
    }
    expect(n).toBe(20);
    expect([...sizes]).toEqual(['320x240']);
    expect(run.stats.sizeChanged).toEqual({ frame: 10, from: '320x240', to: '160x120' });
  });

  it('rotation metadata is applied: a 320x240 file shown at 90 degrees gives 240x320 frames', async () => {
    const sizes = new Set<string>();
    for await (const f of detectVideo(atto(), file('rotated.mp4'))) sizes.add(`${f.width}x${f.height}`);
    expect([...sizes]).toEqual(['240x320']);
  });

  it('a file deleted during the run is read to its end (it stays open)', async () => {
    execFileSync('cp', [file('clip.mp4'), file('deleted.mp4')]);
    let n = 0;
    for await (const _ of detectVideo(atto(), file('deleted.mp4'))) if (++n === 2) execFileSync('rm', [file('deleted.mp4')]);
    expect(n).toBe(20);
  });

  it('a FIFO is ERR_VIDEO_SOURCE naming it, at once (was "Video file is empty")', async () => {
    expect(await codeOf(file('pipe.mp4'))).toMatch(/^ERR_VIDEO_SOURCE: .*pipe\.mp4 is a FIFO \(named pipe\), not a video file/);
  });

  it('an animated WebP is ERR_VIDEO saying ffmpeg cannot decode it (was "Error marking filters as finished")', async () => {
    expect(await codeOf(file('anim.webp'))).toMatch(/^ERR_VIDEO: Could not decode .*anim\.webp: an animated WebP, which ffmpeg cannot decode/);
  });

  it("ffmpeg's log is read without the file's own name in it", () => {
    const log = "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/t/moov-partial.mp4':\n  Duration: N/A\n";
    expect(failureReason(log, '/t/moov-partial.mp4')).toBe('');
  });
});

describe('the CLI on hostile inputs and outputs', () => {
  it('a file cut at 30%: exit 1, a warning with frames read of 20, the JSONL marked incomplete, the MP4 holds those frames', async () => {
    const out = file('cut.out.mp4');
    const json = file('cut.out.jsonl');
    const r = await deimv2(['detect', file('front-30.mp4'), '--out', out, '--json', json, '--backend', 'cpu', '--quiet']);
    expect(r.code).toBe(1);
    const read = Number(/INCOMPLETE: the input is truncated or damaged: (\d+) of its 20 frames were read/.exec(r.stderr)?.[1]);
    expect(read, r.stderr).toBeGreaterThan(0);
    expect(r.stderr).not.toMatch(/@ 0x|\n\s+at /);
    const lines = readFileSync(json, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => 'frame' in l)).toHaveLength(read);
    expect(lines.at(-1)).toMatchObject({ summary: { incomplete: true, framesRead: read, framesExpected: 20 } });
    expect(frames(out)).toBe(read);
    expect(leftRunning()).toEqual([]);
    // deimv2 track on those detections carries the mark on (it was lost: exit 0, no word of it).
    const tracks = file('cut.tracks.jsonl');
    const t = await deimv2(['track', '--detections', json, '--out', tracks]);
    expect(t.code).toBe(0);
    expect(t.stderr).toMatch(new RegExp(`warning: .*cut\\.out\\.jsonl holds the detections of an incomplete video \\(${read} of 20 frames read`));
    const last = JSON.parse(readFileSync(tracks, 'utf8').trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(last).toMatchObject({ summary: { incomplete: true, framesRead: read, framesExpected: 20 } });
  });

  it('an audio file is read as a video with no video stream (was "not an image")', async () => {
    const r = await deimv2(['detect', file('voice.m4a'), '--json', file('voice.jsonl'), '--backend', 'cpu', '--quiet']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Could not decode .*voice\.m4a: it has no video stream \(audio only\) \[ERR_VIDEO\]/);
    expect(existsSync(file('voice.jsonl'))).toBe(false);
  });

  it('a JSONL that cannot be written fails the run and leaves no MP4 (a 1-frame video was left under --out)', async () => {
    const out = file('failed.out.mp4');
    const run = runVideoDetect(atto(), file('clip.mp4'), { out, json: file('full.jsonl'), quiet: true, handleSigint: false });
    await expect(run).rejects.toMatchObject({ code: 'ERR_OUTPUT_WRITE', message: expect.stringMatching(/Cannot write .*full\.jsonl: ENOSPC/) });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.partial'))).toEqual([]);
    expect(leftRunning()).toEqual([]);
  });

  it('an MP4 onto a full device says why (was "Error initializing output stream 0:1 --")', async () => {
    const run = runVideoDetect(atto(), file('clip.mp4'), { out: file('full.mp4'), quiet: true, handleSigint: false });
    await expect(run).rejects.toMatchObject({ code: 'ERR_OUTPUT_WRITE', message: expect.stringMatching(/Could not write .*full\.mp4: .*No space left on device/) });
    expect(leftRunning()).toEqual([]);
  });

  it('a 1-frame video gives one result and a 1-frame MP4', async () => {
    const out = file('one.out.mp4');
    const summary = await runVideoDetect(atto(), file('one.mp4'), { out, quiet: true, handleSigint: false });
    expect(summary.processed).toBe(1);
    expect(summary.decodeError).toBeUndefined();
    expect(frames(out)).toBe(1);
  });

  it('two runs writing the same output at once: each writes a whole file, the last to finish wins, no temporary file left', async () => {
    const out = file('shared.out.mp4');
    const json = file('shared.out.jsonl');
    const runs = await Promise.all(['clip.mp4', 'one.mp4'].map((f) => runVideoDetect(atto(), file(f), { out, json, quiet: true, handleSigint: false })));
    const counts = runs.map((r) => r.processed);
    expect(counts).toContain(frames(out));
    expect(readFileSync(json, 'utf8').trim().split('\n')).toHaveLength(frames(out));
    expect(readdirSync(dir).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('--out equal to the input, or into a read-only folder, is refused before anything runs', async () => {
    const before = statSync(file('clip.mp4')).mtimeMs;
    const same = await deimv2(['detect', file('clip.mp4'), '--out', file('clip.mp4'), '--backend', 'cpu', '--quiet']);
    expect(same.code).toBe(1);
    expect(same.stderr).toMatch(/would overwrite the input .*clip\.mp4.*\[ERR_OUTPUT_CLASH\]/);
    expect(statSync(file('clip.mp4')).mtimeMs).toBe(before);
    // Read-only for root too: a read-only tmpfs where mount works, else a folder without write bits (non-root).
    const ro = file('ro');
    mkdirSync(ro);
    let readOnly = false;
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro], { stdio: 'ignore' });
      readOnly = true;
    } catch {
      if (process.getuid?.() !== 0) {
        execFileSync('chmod', ['555', ro]);
        readOnly = true;
      }
    }
    if (!readOnly) return;
    try {
      const r = await deimv2(['detect', file('clip.mp4'), '--out', path.join(ro, 'o.mp4'), '--backend', 'cpu', '--quiet']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/o\.mp4.*read-only.*\[ERR_OUTPUT_WRITE\]/);
    } finally {
      try {
        execFileSync('umount', [ro], { stdio: 'ignore' });
      } catch {
        execFileSync('chmod', ['755', ro]);
      }
    }
  });

  it('one animated GIF: as an image, a note that only its first frame is detected; with an MP4 --out, every frame', async () => {
    const image = await deimv2(['detect', file('anim.gif'), '--json', file('gif.json'), '--backend', 'cpu']);
    expect(image.code).toBe(0);
    expect(image.stderr).toMatch(/note: .*anim\.gif is animated \(10 frames\): as an image, only its first frame is detected/);
    const video = await deimv2(['detect', file('anim.gif'), '--out', file('gif.mp4'), '--json', file('gif.jsonl'), '--backend', 'cpu', '--quiet']);
    expect(video.code, video.stderr).toBe(0);
    expect(frames(file('gif.mp4'))).toBe(10);
    expect(readFileSync(file('gif.jsonl'), 'utf8').trim().split('\n')).toHaveLength(10);
  });
});
