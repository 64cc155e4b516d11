/**
 * H.264 encoder: one ffmpeg process reading raw RGB frames from a pipe and writing an MP4
 * (libx264, yuv420p) with the input's size and frame rate, one output frame per frame written.
 * Audio is taken from the source file when it has some. The file is finished by closing the
 * pipe, which is also what happens when this process dies, so a stopped run leaves a valid MP4.
 * Live runs write a fragmented MP4 (valid at every fragment, even if ffmpeg itself is killed)
 * timed by the wall clock, since frames may have been dropped.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { DeimError, errorMessage } from '../errors.js';
import type { FfmpegLocation } from './ffmpeg.js';
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
}

/** Throws ERR_OUTPUT_WRITE when `file` cannot be created or overwritten. Leaves an empty file. */
export function checkWritable(file: string): void {
  try {
    closeSync(openSync(file, 'w'));
  } catch (err) {
    throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${file}: ${errorMessage(err)}`, { input: file, cause: err });
  }
}

export class FrameEncoder {
  private readonly proc: ChildProcess;
  private log = '';
  private writeError: Error | undefined;
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly frameBytes: number;
  /** Frames accepted so far. */
  written = 0;

  constructor(ffmpeg: FfmpegLocation, readonly output: string, options: EncoderOptions) {
    this.frameBytes = options.width * options.height * 3;
    const args = ['-hide_banner', '-nostats', '-loglevel', 'error', '-y'];
    if (options.live) args.push('-use_wallclock_as_timestamps', '1');
    args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${options.width}x${options.height}`, '-r', options.fpsText, '-i', 'pipe:0');
    if (options.audioFrom) args.push(...protocolWhitelist(options.audioFrom), '-i', ffmpegInputPath(options.audioFrom));
    args.push('-map', '0:v:0');
    if (options.audioFrom) args.push('-map', '1:a:0?', '-c:a', 'aac', '-b:a', '128k', '-shortest');
    args.push('-c:v', 'libx264', '-preset', options.preset ?? DEFAULT_PRESET, '-pix_fmt', 'yuv420p');
    if (options.live) {
      args.push('-fps_mode', 'vfr', '-movflags', '+frag_keyframe+empty_moov+default_base_moof');
    } else {
      // faststart rewrites the file once at the end; the run always ends by closing stdin, so
      // ffmpeg gets to do it (a stopped run included).
      args.push('-movflags', '+faststart');
    }
    args.push('-f', 'mp4', output);
    this.proc = spawn(ffmpeg.path, args, { stdio: ['pipe', 'ignore', 'pipe'], detached: true });
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
  }

  /** Queue one frame; resolves when the pipe can take more (backpressure). */
  async write(rgb: Uint8Array): Promise<void> {
    if (rgb.length !== this.frameBytes) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a ${this.frameBytes}-byte RGB frame for the encoder but received ${rgb.length} bytes`);
    }
    if (this.writeError || this.proc.exitCode !== null) throw await this.failure();
    this.written++;
    if (this.proc.stdin!.write(rgb)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.proc.stdin!.off('drain', done);
        this.proc.off('close', done);
        resolve();
      };
      this.proc.stdin!.on('drain', done);
      this.proc.on('close', done);
    });
    if (this.writeError || this.proc.exitCode !== null) throw await this.failure();
  }

  /** Close the pipe and wait until ffmpeg has written the file. Throws ERR_OUTPUT_WRITE on failure. */
  async finish(): Promise<void> {
    this.proc.stdin!.end();
    const { code, signal } = await this.exited;
    if (code !== 0) throw await this.failure(code, signal);
  }

  private async failure(code?: number | null, signal?: NodeJS.Signals | null): Promise<DeimError> {
    if (code === undefined) ({ code, signal } = await this.exited);
    const last = this.log.trim().split('\n').pop() ?? '';
    const why = last || this.writeError?.message || `ffmpeg exited with ${signal ?? `code ${code}`}`;
    return new DeimError('ERR_OUTPUT_WRITE', `Could not write ${this.output}: ${why}`, { input: this.output });
  }

  /** Stop without finishing (the output may be incomplete). */
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}
