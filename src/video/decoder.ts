/**
 * Frame decoder: one ffmpeg process writing raw RGB frames (rgb24) to a pipe, cut into frames
 * here and handed out through a bounded queue. For a file the queue's bound pauses the pipe
 * (ffmpeg then blocks: decoding stays only a few frames ahead). For a live source the pipe is
 * never paused (the source would back up inside ffmpeg without bound); the oldest queued frame is
 * dropped instead and counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { DeimError } from '../errors.js';
import type { FfmpegLocation } from './ffmpeg.js';
import { parseFfmpegLog, type VideoInfo } from './probe.js';
import { ffmpegInputOptions, ffmpegInputPath } from './source.js';

export interface DecodedFrame {
  /** Index in the source (live sources: counts dropped frames too, so indices can skip). */
  index: number;
  /** RGB, width x height x 3, owned by the receiver. */
  data: Buffer;
}

export interface DecoderOptions {
  live: boolean;
  /** Frames decoded ahead of the consumer (default 6 for files, 2 for live sources). */
  maxQueue?: number;
  /** ffmpeg's decoding threads (default: ffmpeg's choice); each may hold a frame. */
  threads?: number;
  /** Read a file this many extra times (ffmpeg -stream_loop), for benchmarks. */
  loop?: number;
  /**
   * Give up when ffmpeg has not produced the stream header within this time (default 15 s); a
   * UDP or RTP source silent this long after that also ends the run.
   */
  openTimeoutMs?: number;
  /** Live sources: keep at most this many frames a second; the others are skipped (not counted as dropped). */
  maxFps?: number;
}

const DAMAGE = /partial file|Error while decoding|corrupt|Invalid NAL|error reading header/i;

/** The first line of ffmpeg's log that reports damage, judged without the source's own name in it. */
export function damageLine(text: string, source: string): string | undefined {
  return text.split('\n').find((line) => DAMAGE.test(source ? line.split(source).join('') : line))?.trim();
}

/** Lines of ffmpeg's log kept for error messages. */
const LOG_TAIL_CHARS = 4000;

export class FrameDecoder implements AsyncIterable<DecodedFrame> {
  /** Frames dropped because the consumer was slower than a live source. */
  dropped = 0;
  /** Frames cut from the pipe so far. */
  decoded = 0;
  /** Live frames skipped to keep to maxFps. */
  skipped = 0;
  private lastKept = -Infinity;
  private minIntervalMs = 0;
  /** Set when ffmpeg stopped with an error after delivering frames (a truncated file). */
  decodeError: string | undefined;

  private readonly queue: DecodedFrame[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private failure: DeimError | undefined;
  private stopped = false;
  private frameBytes = 0;
  private partial: Buffer | undefined;
  /** Frames' memory given back by recycle(), reused before any new frame is allocated. */
  private readonly spare: Buffer[] = [];
  private shared = false;
  private partialFill = 0;
  private pendingChunks: Buffer[] = [];
  private log = '';
  private damage: string | undefined;
  /** The log's last line, until its newline comes (a chunk can end mid-line, mid-name). */
  private logLine = '';

  private constructor(
    private readonly proc: ChildProcess,
    private readonly source: string,
    private maxQueue: number,
    private readonly live: boolean,
    /** Filled in by open() once ffmpeg has printed the stream header. */
    public info: VideoInfo,
  ) {}

  /**
   * Start ffmpeg on `source` and wait until it reports the stream (or fails, or times out).
   * Errors: ERR_VIDEO naming the source and ffmpeg's reason.
   */
  static async open(ffmpeg: FfmpegLocation, source: string, options: DecoderOptions): Promise<FrameDecoder> {
    const args = ['-hide_banner', '-nostats', '-nostdin', '-loglevel', 'info'];
    if (options.loop) args.push('-stream_loop', String(options.loop));
    if (options.threads) args.push('-threads', String(options.threads));
    args.push(...ffmpegInputOptions(source, options.openTimeoutMs), '-i', ffmpegInputPath(source), '-map', '0:v:0', '-an', '-sn', '-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
    // detached: ffmpeg gets its own process group, so a terminal Ctrl-C reaches only us and we
    // decide how to stop (finish the frames in flight, then close the output).
    const proc = spawn(ffmpeg.path, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const placeholder: VideoInfo = { width: 0, height: 0, fps: 0, fpsText: '0', hasAudio: false };
    const decoder = new FrameDecoder(proc, source, options.maxQueue ?? (options.live ? 2 : 6), options.live, placeholder);
    if (options.live && options.maxFps) decoder.minIntervalMs = 1000 / options.maxFps;
    await decoder.start(options.openTimeoutMs ?? 15_000);
    return decoder;
  }

  private start(openTimeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let opened = false;
      const timer = setTimeout(() => {
        this.kill();
        reject(new DeimError('ERR_VIDEO', `Could not open ${this.source}: no video stream within ${Math.round(openTimeoutMs / 1000)} s${this.reason()}`, { input: this.source }));
      }, openTimeoutMs);
      this.proc.stderr!.setEncoding('utf8');
      this.proc.stderr!.on('data', (text: string) => {
        this.log = (this.log + text).slice(-(opened ? LOG_TAIL_CHARS : 64_000));
        // ffmpeg reports a damaged or truncated file in its log but still exits with 0. Its log
        // also echoes the file name (which may itself say "corrupt"): that is left out of the test.
        const lines = (this.logLine + text).split('\n');
        this.logLine = lines.pop()!;
        this.damage ??= damageLine(lines.join('\n'), this.source);
        if (opened) return;
        const info = parseFfmpegLog(this.log);
        if (!info) return;
        opened = true;
        clearTimeout(timer);
        this.info = info;
        this.frameBytes = info.width * info.height * 3;
        for (const chunk of this.pendingChunks) this.takeChunk(chunk);
        this.pendingChunks = [];
        resolve();
      });
      this.proc.stdout!.on('data', (chunk: Buffer) => (opened ? this.takeChunk(chunk) : this.pendingChunks.push(chunk)));
      this.proc.on('error', (err) => {
        clearTimeout(timer);
        this.finish(new DeimError('ERR_VIDEO', `Could not run ffmpeg for ${this.source}: ${err.message}`, { input: this.source, cause: err }));
        if (!opened) reject(this.failure);
      });
      this.proc.on('close', (code, signal) => {
        clearTimeout(timer);
        if (this.stopped) return this.finish(undefined);
        if (!opened && code === 0) {
          // ffmpeg ended cleanly but its log never gave a video stream's size: the open must still
          // settle (it used to wait forever, and the CLI exited 13 with no message).
          const error = new DeimError('ERR_VIDEO', `Could not decode ${this.source}: ffmpeg reported no video stream whose frame size could be read${this.reason()}`, { input: this.source });
          this.finish(error);
          return reject(error);
        }
        if (code === 0) {
          this.decodeError = this.damage ?? damageLine(this.logLine, this.source);
          return this.finish(undefined);
        }
        const reason = `ffmpeg exited with ${signal ?? `code ${code}`}${this.reason()}`;
        if (!opened || this.decoded === 0) {
          const error = new DeimError('ERR_VIDEO', `Could not decode ${this.source}: ${reason}`, { input: this.source });
          this.finish(error);
          if (!opened) reject(error);
          return;
        }
        this.decodeError = reason;
        this.finish(undefined);
      });
    });
  }

  /** ffmpeg's last complaints (up to two distinct lines), as ": a; b", for error messages. */
  private reason(): string {
    const lines = this.log
      .split('\n')
      .map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i, '').trim())
      .filter((l) => /error|invalid|no such|not found|refused|timed out|failed|unable|could not|moov|partial/i.test(l));
    const last = [...new Set(lines)].slice(-2);
    return last.length ? `: ${last.join('; ')}` : '';
  }

  private takeChunk(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (!this.partial) {
        // Each frame owns its memory (never a slice of a pool, so one frame held by a consumer
        // pins no other). Frames given back with recycle() are reused: garbage frames would
        // otherwise pile up until a GC (seen: every frame of a video kept).
        this.partial = this.spare.pop() ?? (this.shared ? Buffer.from(new SharedArrayBuffer(this.frameBytes)) : Buffer.allocUnsafeSlow(this.frameBytes));
        this.partialFill = 0;
      }
      const n = Math.min(chunk.length - offset, this.frameBytes - this.partialFill);
      chunk.copy(this.partial, this.partialFill, offset, offset + n);
      this.partialFill += n;
      offset += n;
      if (this.partialFill === this.frameBytes) {
        this.push({ index: this.decoded++, data: this.partial });
        this.partial = undefined;
      }
    }
  }

  private push(frame: DecodedFrame): void {
    if (this.stopped) return;
    if (this.minIntervalMs > 0) {
      // A 10% tolerance: a source at exactly maxFps keeps every frame despite jitter.
      const now = performance.now();
      if (now - this.lastKept < this.minIntervalMs * 0.9) {
        this.skipped++;
        return this.recycle(frame);
      }
      this.lastKept = now;
    }
    this.queue.push(frame);
    if (this.queue.length > this.maxQueue) {
      if (this.live) {
        this.recycle(this.queue.shift()!);
        this.dropped++;
      }
    }
    if (!this.live && this.queue.length >= this.maxQueue) this.proc.stdout!.pause();
    this.wakeUp();
  }

  private finish(error: DeimError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.failure ??= error;
    this.wakeUp();
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Gives a frame's memory back for the next frames, once nothing reads or writes it any more. */
  recycle(frame: DecodedFrame): void {
    if (frame.data.length === this.frameBytes) this.spare.push(frame.data);
  }

  /**
   * New frames in shared memory from now on: a pool worker then reads a frame in place instead of
   * receiving a copy that stays in its heap until its next GC (a 16000x16000 frame is 768 MB).
   * Only where memory is tight: copying out of shared memory is slower (about 5% CPU on 768x432).
   */
  shareFrames(): void {
    this.shared = true;
  }

  /** Holds at most `frames` decoded frames in the queue from now on (at least 1). */
  limitQueue(frames: number): void {
    this.maxQueue = Math.max(1, Math.min(this.maxQueue, Math.floor(frames)));
  }

  /** The next frame, or undefined at the end of the stream. Throws the decoder's failure. */
  async next(): Promise<DecodedFrame | undefined> {
    for (;;) {
      const frame = this.queue.shift();
      if (frame) {
        if (!this.live && this.queue.length < this.maxQueue && this.proc.stdout!.isPaused()) this.proc.stdout!.resume();
        return frame;
      }
      if (this.ended || this.stopped) {
        if (this.failure) throw this.failure;
        return undefined;
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<DecodedFrame> {
    try {
      for (let frame = await this.next(); frame; frame = await this.next()) yield frame;
    } finally {
      this.stop();
    }
  }

  /** Stop decoding now: queued frames are discarded, ffmpeg is ended. Safe to call twice. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.queue.length = 0;
    this.kill();
    this.wakeUp();
  }

  private kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    this.proc.stdout?.destroy();
  }
}
