/**
 * Frame decoder: one ffmpeg process writing raw RGB frames (rgb24) to a pipe, cut into frames
 * here and handed out through a bounded queue. For a file the queue's bound pauses the pipe
 * (ffmpeg then blocks: decoding stays only a few frames ahead). For a live source the pipe is
 * never paused (the source would back up inside ffmpeg without bound); the oldest queued frame is
 * dropped instead and counted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';
import { DeimError } from '../errors.js';
import type { FfmpegLocation } from './ffmpeg.js';
import { openFrameSocket } from './frame-socket.js';
import { parseFfmpegLog, type VideoInfo } from './probe.js';
import { ffmpegInputOptions, ffmpegInputPath } from './source.js';

export interface DecodedFrame {
  /** Index in the source (live sources: counts dropped frames too, so indices can skip). */
  index: number;
  /** RGB, width x height x 3, owned by the receiver. */
  data: Buffer;
  /**
   * Presentation time in seconds from the start of the file (the source's own timestamp: frames
   * of a variable-rate file keep their uneven times); undefined for live sources.
   */
  pts?: number;
}

export interface DecoderOptions {
  live: boolean;
  /** Frames decoded ahead of the consumer (default 6 for files, 2 for live sources). */
  maxQueue?: number;
  /** ffmpeg's decoding threads (default: ffmpeg's choice); each may hold a frame. */
  threads?: number;
  /** Read a file this many extra times (ffmpeg -stream_loop), for benchmarks. */
  loop?: number;
  /** Frames in shared memory from the first one (see shareFrames()). */
  shared?: boolean;
  /**
   * Give up when ffmpeg has not produced the stream header within this time (default 15 s); a
   * UDP or RTP source silent this long after that also ends the run.
   */
  openTimeoutMs?: number;
  /** Live sources: keep at most this many frames a second; the others are skipped (not counted as dropped). */
  maxFps?: number;
}

/**
 * Files are decoded with -fps_mode passthrough (each source frame once: no frame duplicated or
 * dropped to make a constant rate) and ffmpeg's showinfo filter, whose log line for each frame
 * gives its pts in the stream's time base: the decoder's side channel for the frames' real times.
 */
const SHOWINFO = /^\[Parsed_showinfo_\d+ @ [^\]]*\]\s*(.*)$/;
const SHOWINFO_FRAME = /^n:\s*\d+\s+pts:\s*(-?\d+|NOPTS)\b/;
const SHOWINFO_SIZE = /\bs:(\d+x\d+)\b/;
const SHOWINFO_CONFIG = /^config in time_base: (\d+)\/(\d+)/;

const DAMAGE = /partial file|Error while decoding|corrupt|Invalid NAL|error reading header/i;

/** The first line of ffmpeg's log that reports damage, judged without the source's own name in it. */
export function damageLine(text: string, source: string): string | undefined {
  const line = text.split('\n').find((l) => DAMAGE.test(source ? l.split(source).join('') : l));
  return line === undefined ? undefined : cleanLogLine(line);
}

/** ffmpeg's log line prefix naming the component and its address ("[mov,mp4,m4a @ 0x55d0...] "). */
const LOG_PREFIX = /^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i;

/** A line of ffmpeg's log for a message: without its "[component @ 0x...]" prefix, trimmed. */
export function cleanLogLine(line: string): string {
  return line.replace(LOG_PREFIX, '').trim();
}

/**
 * Why ffmpeg could not decode `source`, from its log, as ": reason" (or '' when the log says
 * nothing useful). The situations a user can act on are said in words (no video stream, an MP4
 * without its index, an animated WebP); otherwise up to two of ffmpeg's last distinct complaints.
 * Lines are judged without the source's own name in them (a file named "moov-partial.mp4").
 */
export function failureReason(log: string, source: string): string {
  return explainFailure(log, source) ?? complaints(log, source);
}

/** The situations failureReason says in words, or undefined. */
export function explainFailure(log: string, source: string): string | undefined {
  const lines = logLines(log, source);
  const has = (re: RegExp) => lines.some((l) => re.test(l));
  const inputBlock = log.split('\n').filter((l) => /^\s+Stream #0:\d+/.test(l));
  if (has(/skipping unsupported chunk: ANIM/)) return ': an animated WebP, which ffmpeg cannot decode (convert it first, e.g. to an animated GIF or an MP4)';
  // ffmpeg guessed MP4 from the name alone: the bytes are no video at all.
  if (has(/misdetection possible/) && has(/Invalid data found when processing input/)) return ': not a video file (ffmpeg: Invalid data found when processing input)';
  if (has(/moov atom not found/)) return ': moov atom not found: the MP4 has no index, so the file is truncated or was never finished (a recording stopped before it was closed)';
  if (has(/matches no streams/) && !inputBlock.some((l) => /: Video:/.test(l))) {
    if (inputBlock.some((l) => /: Audio:/.test(l))) return ': it has no video stream (audio only)';
    return ': it has no video stream (no stream could be read: an empty, unfinished or damaged file)';
  }
  return undefined;
}

/** The log's lines without their "[component @ 0x...]" prefixes and without the source's name. */
function logLines(log: string, source: string): string[] {
  return log.split('\n').map((l) => cleanLogLine(source ? l.split(source).join('') : l));
}

/** Up to two of ffmpeg's last distinct complaints, as ": a; b" ('' for none). */
function complaints(log: string, source: string): string {
  const complaints = logLines(log, source).filter((l) => /error|invalid|no such|not found|refused|timed out|failed|unable|could not|moov|partial/i.test(l));
  const last = [...new Set(complaints)].slice(-2);
  return last.length ? `: ${last.join('; ')}` : '';
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
  /** Files: frames cut from the pipe whose showinfo line has not been read yet. */
  private readonly awaitingPts: DecodedFrame[] = [];
  /** Files: showinfo pts (seconds) read ahead of their frame. */
  private readonly ptsAhead: Array<number | undefined> = [];
  /** The stream's time base as showinfo reports it, [num, den]. */
  timeBase: [number, number] | undefined;
  /**
   * Set when the stream's frame size changed after the first frame (a concatenation of two
   * resolutions): ffmpeg then scales the later frames to the first size, so every frame handed out
   * has the size of `info`, and `frame` is the first frame that was scaled.
   */
  sizeChanged: { frame: number; from: string; to: string } | undefined;
  /** Files: the first frame's size as showinfo reports it ("320x240"), and frames reported so far. */
  private firstSize: string | undefined;
  private showinfoFrames = 0;

  /** Where the frames' bytes come from (a socket read into one buffer, or ffmpeg's stdout). */
  private output!: Readable;
  /** Settles when the frames' bytes have all been read (or the reader is gone). */
  private outputDone: Promise<void> = Promise.resolve();

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
    args.push(...ffmpegInputOptions(source, options.openTimeoutMs), '-i', ffmpegInputPath(source), '-map', '0:v:0', '-an', '-sn');
    if (!options.live) args.push('-vf', 'showinfo=checksum=0', '-fps_mode', 'passthrough');
    args.push('-f', 'rawvideo', '-pix_fmt', 'rgb24', 'pipe:1');
    // detached: ffmpeg gets its own process group, so a terminal Ctrl-C reaches only us and we
    // decide how to stop (finish the frames in flight, then close the output).
    // The frames come on a socket read into one reused buffer where one can be made, else on the pipe.
    let take: (chunk: Buffer, reused: boolean) => void = () => {};
    const socket = await openFrameSocket((chunk) => take(chunk, true));
    let proc: ChildProcess;
    try {
      proc = spawn(ffmpeg.path, args, { stdio: ['ignore', socket ? socket.childEnd : 'pipe', 'pipe'], detached: true });
    } catch (e) {
      socket?.reader.destroy();
      throw e;
    } finally {
      socket?.detach();
    }
    const placeholder: VideoInfo = { width: 0, height: 0, fps: 0, fpsText: '0', hasAudio: false };
    const decoder = new FrameDecoder(proc, source, options.maxQueue ?? (options.live ? 2 : 6), options.live, placeholder);
    if (socket) {
      decoder.output = socket.reader;
      decoder.outputDone = new Promise((resolve) => socket.reader.once('close', () => resolve()));
      // A reset connection ends the frames like a closed pipe; ffmpeg's exit says why.
      socket.reader.on('error', () => {});
    } else {
      decoder.output = proc.stdout!;
      proc.stdout!.on('data', (chunk: Buffer) => take(chunk, false));
    }
    take = (chunk, reused) => decoder.takeBytes(chunk, reused);
    if (options.live && options.maxFps) decoder.minIntervalMs = 1000 / options.maxFps;
    if (options.shared) decoder.shareFrames();
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
        const lines = (this.logLine + text).split('\n');
        this.logLine = lines.pop()!;
        // showinfo's lines are the frames' times, kept out of the log (they would push ffmpeg's
        // complaints out of its tail).
        const logged = lines.filter((line) => !this.takeShowinfo(line));
        if (logged.length) this.log = (this.log + logged.join('\n') + '\n').slice(-(opened ? LOG_TAIL_CHARS : 64_000));
        // ffmpeg reports a damaged or truncated file in its log but still exits with 0. Its log
        // also echoes the file name (which may itself say "corrupt"): that is left out of the test.
        this.damage ??= damageLine(logged.join('\n'), this.source);
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
      this.takeBytes = (chunk, reused) => (opened ? this.takeChunk(chunk) : this.pendingChunks.push(reused ? Buffer.from(chunk) : chunk));
      this.proc.on('error', (err) => {
        clearTimeout(timer);
        this.finish(new DeimError('ERR_VIDEO', `Could not run ffmpeg for ${this.source}: ${err.message}`, { input: this.source, cause: err }));
        if (!opened) reject(this.failure);
      });
      // ffmpeg's end is judged once the frames' bytes have all been read.
      this.proc.on('close', (code, signal) => void this.outputDone.then(() => onClose(code, signal)));
      const onClose = (code: number | null, signal: NodeJS.Signals | null) => {
        clearTimeout(timer);
        // Every log line is in: a frame still waiting for its time never gets one.
        for (const frame of this.awaitingPts.splice(0)) this.push(frame);
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
          // A situation said in words needs no exit code ("Could not decode a.m4a: it has no video stream (audio only)").
          const explained = explainFailure(this.log, this.source);
          const error = new DeimError('ERR_VIDEO', `Could not decode ${this.source}${explained ?? `: ${reason}`}`, { input: this.source });
          this.finish(error);
          if (!opened) reject(error);
          return;
        }
        this.decodeError = reason;
        this.finish(undefined);
      };
    });
  }

  /** Bytes of frames as they come (`reused`: the buffer is read into again after this call). */
  private takeBytes: (chunk: Buffer, reused: boolean) => void = () => {};

  /** ffmpeg's last complaints (up to two distinct lines), as ": a; b", for error messages. */
  private reason(): string {
    return failureReason(this.log, this.source);
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
        this.frameDone({ index: this.decoded++, data: this.partial });
        this.partial = undefined;
      }
    }
  }

  /** A whole frame from the pipe: files hand it out once its showinfo time is known. */
  private frameDone(frame: DecodedFrame): void {
    if (this.live) return this.push(frame);
    if (this.ptsAhead.length === 0) {
      this.awaitingPts.push(frame);
      return;
    }
    const pts = this.ptsAhead.shift();
    if (pts !== undefined) frame.pts = pts;
    this.push(frame);
  }

  /** Reads one log line if it is showinfo's; returns false for every other line. */
  private takeShowinfo(line: string): boolean {
    const info = SHOWINFO.exec(line)?.[1];
    if (info === undefined) return false;
    const config = SHOWINFO_CONFIG.exec(info);
    if (config) {
      this.timeBase = [Number(config[1]), Number(config[2])];
      return true;
    }
    const frame = SHOWINFO_FRAME.exec(info);
    if (!frame) return true;
    const size = SHOWINFO_SIZE.exec(info)?.[1];
    if (size !== undefined) {
      this.firstSize ??= size;
      if (size !== this.firstSize) this.sizeChanged ??= { frame: this.showinfoFrames, from: this.firstSize, to: size };
    }
    this.showinfoFrames++;
    const pts = frame[1] === 'NOPTS' || !this.timeBase ? undefined : (Number(frame[1]) * this.timeBase[0]) / this.timeBase[1];
    const waiting = this.awaitingPts.shift();
    if (!waiting) {
      this.ptsAhead.push(pts);
      return true;
    }
    if (pts !== undefined) waiting.pts = pts;
    this.push(waiting);
    return true;
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
    if (!this.live && this.queue.length >= this.maxQueue) this.output.pause();
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
        if (!this.live && this.queue.length < this.maxQueue && this.output.isPaused()) this.output.resume();
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
    this.output?.destroy();
  }
}
