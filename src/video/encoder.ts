/**
 * H.264 encoder: one ffmpeg process reading raw RGB frames from a pipe and writing an MP4
 * (libx264, yuv420p) with the input's size (an odd side padded by one black pixel: yuv420p needs
 * even sides) and frame rate, one output frame per frame written.
 * Audio is taken from the source file when it has some. The file is finished by closing the
 * pipe, which is also what happens when this process dies, so a stopped run leaves a valid MP4.
 * ffmpeg writes a temporary file beside the output, renamed onto the output's name once ffmpeg
 * has finished it (removed when it failed or holds no frame), so the name never holds a
 * truncated or empty video; after a second Ctrl-C a small detached shell does that rename.
 * Files are timed by their source: each frame goes down the pipe in a small Matroska stream
 * (mkv.ts) with the source frame's pts, and is encoded at that time in the source's time base
 * (a variable-rate file keeps its uneven frame times, and every frame once).
 * Live runs write a fragmented MP4 (valid at every fragment, even if ffmpeg itself is killed)
 * timed by the wall clock, since frames may have been dropped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { DeimError } from '../errors.js';
import { AtomicFile } from '../output/atomic.js';
import { planOutputs } from '../output/plan.js';
import type { FfmpegLocation } from './ffmpeg.js';
import { mkvFrameHeader, mkvHeader } from './mkv.js';
import { parseRate } from './probe.js';
import { ffmpegInputPath, protocolWhitelist } from './source.js';

export const DEFAULT_PRESET = 'ultrafast';

export interface EncoderOptions {
  width: number;
  height: number;
  /** Frame rate as ffmpeg takes it ("25/2", "30000/1001", "25"). */
  fpsText: string;
  /** Copy the audio of this file into the output (re-encoded as AAC, cut to the video's length). */
  audioFrom?: string;
  live: boolean;
  /**
   * x264 preset (default ultrafast). Measured on 2 EPYC cores for 768x432 (core-ms per frame,
   * colour conversion included): ultrafast 5, superfast 8, veryfast 12, against about 16 for
   * detection itself; ultrafast keeps the pipeline's throughput at about twice the file size of
   * veryfast (same CRF 23 quality target).
   */
  preset?: string;
  /** x264's threads (default: its choice); each may hold frames. */
  threads?: number;
  /**
   * The source's time base [num, den] (files): frames are then written with their pts (write's
   * second argument) and keep them in the MP4, whose track uses this time base. Without it frames
   * are one every 1/fps.
   */
  timeBase?: [number, number];
}

/**
 * Checks, before anything runs, that `file` can be written and is not the `source` (or a link
 * to it), and creates its folder. Throws ERR_OUTPUT_CLASH or ERR_OUTPUT_WRITE; creates no file.
 */
export function checkWritable(file: string, source?: string): void {
  planOutputs({ inputs: source !== undefined ? [source] : [], outputs: [{ path: file, kind: 'video' }] });
}

/** ffmpeg's log lines for an output it could not write completely. */
const WRITE_FAILED = /error (writing|closing)|no space left|i\/o error|disk quota/i;

/** Encoders whose ffmpeg is still running, for handOverEncoders(). */
const running = new Set<FrameEncoder>();

/**
 * For a process about to exit at once (a second Ctrl-C): each running encoder's input is closed so
 * ffmpeg finishes its file, and a detached shell renames the file into place when ffmpeg is done
 * (on Windows the temporary file is left as it is).
 */
export function handOverEncoders(): void {
  for (const encoder of running) encoder.handOver();
  running.clear();
}

export class FrameEncoder {
  private readonly proc: ChildProcess;
  private log = '';
  private writeError: Error | undefined;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly frameBytes: number;
  private readonly file: AtomicFile;
  /** Frames accepted so far. */
  written = 0;
  /** With a time base: the last frame's time in ns (times written only ever increase). */
  private lastNs = -1n;
  private readonly timed: boolean;

  constructor(ffmpeg: FfmpegLocation, readonly output: string, options: EncoderOptions) {
    this.frameBytes = options.width * options.height * 3;
    const args = ['-hide_banner', '-nostats', '-loglevel', 'error', '-y'];
    if (options.live) args.push('-use_wallclock_as_timestamps', '1');
    this.timed = options.timeBase !== undefined && !options.live;
    if (this.timed) args.push('-f', 'matroska', '-i', 'pipe:0');
    else args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${options.width}x${options.height}`, '-r', options.fpsText, '-i', 'pipe:0');
    if (options.audioFrom) args.push(...protocolWhitelist(options.audioFrom), '-i', ffmpegInputPath(options.audioFrom));
    args.push('-map', '0:v:0');
    // The audio is padded with silence and cut at the video's end (apad + -shortest), so the MP4
    // always has every frame written (a shorter audio track used to cut the last video frame).
    if (options.audioFrom) args.push('-map', '1:a:0?', '-c:a', 'aac', '-b:a', '128k', '-af', 'apad', '-shortest');
    // yuv420p needs even sides: an odd width or height gets one black column or row (right/bottom).
    if (options.width % 2 === 1 || options.height % 2 === 1) args.push('-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2:0:0:black');
    args.push('-c:v', 'libx264', '-preset', options.preset ?? DEFAULT_PRESET, '-pix_fmt', 'yuv420p');
    if (options.threads) args.push('-threads', String(options.threads));
    if (this.timed) {
      const [num, den] = options.timeBase!;
      args.push('-fps_mode', 'passthrough', '-enc_time_base', `${num}:${den}`, '-video_track_timescale', String(den % num === 0 ? den / num : den));
    }
    if (options.live) {
      args.push('-fps_mode', 'vfr', '-movflags', '+frag_keyframe+empty_moov+default_base_moof');
    } else {
      // faststart rewrites the file once at the end; the run always ends by closing stdin, so
      // ffmpeg gets to do it (a stopped run included).
      args.push('-movflags', '+faststart');
    }
    this.file = new AtomicFile(output);
    args.push('-f', 'mp4', this.file.path);
    this.proc = spawn(ffmpeg.path, args, { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
    running.add(this);
    this.proc.stderr!.setEncoding('utf8');
    this.proc.stderr!.on('data', (text: string) => (this.log = (this.log + text).slice(-4000)));
    this.proc.stdin!.on('error', (err) => (this.writeError ??= err));
    this.exited = new Promise((resolve) => {
      this.proc.on('error', (err) => {
        this.writeError ??= err;
        resolve({ code: -1, signal: null });
      });
      this.proc.on('close', (code, signal) => resolve({ code, signal }));
    });
    void this.exited.then(() => running.delete(this));
    if (this.timed) this.proc.stdin!.write(mkvHeader(options.width, options.height, 1e9 / (parseRate(options.fpsText) ?? 25)));
  }

  /**
   * Writes one frame; resolves once the pipe has taken all of it (backpressure), so the caller may
   * reuse `rgb` then. `pts` (seconds) times the frame when the encoder has a time base.
   */
  async write(rgb: Uint8Array, pts?: number): Promise<void> {
    if (rgb.length !== this.frameBytes) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a ${this.frameBytes}-byte RGB frame for the encoder but received ${rgb.length} bytes`);
    }
    if (this.writeError || this.proc.exitCode !== null) throw await this.failure();
    this.written++;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.proc.off('close', done);
        resolve();
      };
      this.proc.on('close', done);
      if (this.timed) this.proc.stdin!.write(mkvFrameHeader(this.nextNs(pts), rgb.length));
      this.proc.stdin!.write(rgb, done);
    });
    if (this.writeError || this.proc.exitCode !== null) throw await this.failure();
  }

  /** A frame's time in ns: its pts, never before 0 nor at or before the frame before it. */
  private nextNs(pts: number | undefined): bigint {
    let ns = pts !== undefined && Number.isFinite(pts) ? BigInt(Math.max(0, Math.round(pts * 1e9))) : this.lastNs + 1n;
    if (ns <= this.lastNs) ns = this.lastNs + 1n;
    this.lastNs = ns;
    return ns;
  }

  /**
   * Close the pipe, wait until ffmpeg has written the file and move it into place (a file with no
   * frame is removed, not kept). Throws ERR_OUTPUT_WRITE on failure, leaving no file behind.
   */
  async finish(): Promise<void> {
    this.proc.stdin!.end();
    const { code, signal } = await this.exited;
    // ffmpeg (5.x) exits with 0 even when the disk filled up under it: its log says so.
    if (code !== 0 || WRITE_FAILED.test(this.log)) {
      this.file.discard();
      throw await this.failure(code, signal);
    }
    if (this.written === 0) return this.file.discard();
    try {
      await this.file.commit();
    } catch (e) {
      throw new DeimError('ERR_OUTPUT_WRITE', `Could not write ${this.output}: ${(e as Error).message}`, { input: this.output, cause: e });
    }
  }

  /** See handOverEncoders. */
  handOver(): void {
    this.proc.stdin!.end();
    this.file.release();
    if (this.file.path === this.file.final || process.platform === 'win32' || this.proc.pid === undefined) return;
    const script = 'while kill -0 "$1" 2>/dev/null; do sleep 0.1; done; if [ -s "$2" ]; then mv -f -- "$2" "$3"; else rm -f -- "$2"; fi';
    spawn('/bin/sh', ['-c', script, 'sh', String(this.proc.pid), this.file.path, this.file.final], { detached: true, stdio: 'ignore' }).unref();
  }

  private async failure(code?: number | null, signal?: NodeJS.Signals | null): Promise<DeimError> {
    if (code === undefined) ({ code, signal } = await this.exited);
    // The line that says why (ffmpeg's last line is often only "Error initializing output stream 0:0 --").
    const lines = this.log.trim().split('\n').map((l) => l.split(this.file.path).join(this.output).trim()).filter(Boolean);
    const last = [...lines].reverse().find((l) => WRITE_FAILED.test(l) || /could not|permission denied|read-only|not permitted/i.test(l)) ?? lines.pop() ?? '';
    const why = last || this.writeError?.message || `ffmpeg exited with ${signal ?? `code ${code}`}`;
    return new DeimError('ERR_OUTPUT_WRITE', `Could not write ${this.output}: ${why}`, { input: this.output });
  }

  /** Stop without finishing: the output is not written (resolves once ffmpeg is gone and its temporary file removed). */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
    this.file.discard();
  }
}
