/**
 * One stream's supervisor: runs the video pipeline (src/video: the decoder, its protocol
 * whitelists and live-frame dropping; src/track: the tracking session `detect --track` uses) on
 * the stream's source with the shared batcher as its detector, and keeps the stream going: a
 * live source that fails, ends or stalls (no frame for `stallMs`) is opened again after a backoff
 * that doubles from `backoffMs` up to `maxBackoffMs`, forever. A file source is not live: it drops
 * nothing and ends ("ended"). Each processed frame goes to the stream's listeners (events, MJPEG).
 */
import { errorMessage, isDeimError, type DeimErrorCode } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import type { DetectionResult } from '../postprocess/types.js';
import type { LineSummary, TrackSession, ZoneSummary } from '../track/session.js';
import { detectVideo, type FrameDetector, type VideoDetection, type VideoFrameResult } from '../video/pipeline.js';
import type { CheckedStream } from './config.js';
import { redactSource, redactText } from './redact.js';

export type StreamState = 'starting' | 'running' | 'reconnecting' | 'ended' | 'failed';

export interface StreamTiming {
  /** No frame for this long while running: reconnect (default 5000). */
  stallMs: number;
  /** First wait before reconnecting (default 1000), doubled each time up to maxBackoffMs (default 30000). */
  backoffMs: number;
  maxBackoffMs: number;
  /** Give up opening the source after this long (default 10000). */
  openTimeoutMs: number;
}

export interface StreamHooks {
  /** The detector for this stream's frames (the batcher), with the stream's threshold and classes. */
  detect(image: RgbImage, options: { threshold?: number; classes?: string[] }, limit?: number): Promise<DetectionResult>;
  /** The stream sends no frame for now (its run ended, failed or waits to reconnect). */
  idle(): void;
  /** The detector's default threshold and pixel budget. */
  threshold: number;
  maxMemory: number;
  runners: number;
  /** Frames per detector call (the service's --batch). */
  batch: number;
  log(line: string): void;
  onFrame(stream: StreamRunner, frame: VideoFrameResult, latencyS: number): void;
  onDropped(stream: StreamRunner, n: number): void;
  onReconnect(stream: StreamRunner): void;
}

export interface StreamInfo {
  id: string;
  source: string;
  state: StreamState;
  frames: number;
  dropped: number;
  fps: number;
  reconnects: number;
  lastError?: string;
  /** With lines or zones: as `summary.lines` / `summary.zones` of `detect --track --json`. */
  counts?: { lines: LineSummary[]; zones: ZoneSummary[] };
}

function countsOf(session: TrackSession): NonNullable<StreamInfo['counts']> {
  const { lines, zones } = session.summary();
  return { lines, zones };
}

/** Errors that retrying cannot mend: the stream is "failed". */
const CONFIG_ERRORS = new Set<DeimErrorCode>(['ERR_VIDEO_SOURCE', 'ERR_INPUT_NOT_FOUND', 'ERR_INVALID_ARGUMENT', 'ERR_INPUT_EMPTY']);

/** Per zone, the dwell entries of gone tracks a stream keeps (and `counts` lists). */
export const DWELL_ENTRIES = 100;

/** Milliseconds of frames the FPS is measured over. */
const FPS_WINDOW_MS = 3000;

export class StreamRunner {
  state: StreamState = 'starting';
  frames = 0;
  dropped = 0;
  reconnects = 0;
  lastError: string | undefined;
  /** The newest processed frame, annotated (read it with latestImage() to keep its pixels). */
  latest: { frame: VideoFrameResult; image: RgbImage } | undefined;
  /**
   * Whether latest's pixels were handed to a reader (a JPEG being made, latestImage()): then they
   * are left to the GC; otherwise the next frame gives them back to the decoder for reuse.
   */
  private latestTaken = false;
  /** The run the latest frame came from (its decoder takes the memory back). */
  private latestRun: VideoDetection | undefined;
  /** The session whose summary gives `counts` (made when asked, not per frame). */
  private tracking: TrackSession | undefined;
  private readonly times: number[] = [];
  private stopped = false;
  private attempt: AbortController | undefined;
  private lastFrameAt = 0;
  private loop: Promise<void> | undefined;
  private wakeSleep: (() => void) | undefined;

  constructor(
    readonly config: CheckedStream,
    private readonly hooks: StreamHooks,
    private readonly timing: StreamTiming,
  ) {}

  get id(): string {
    return this.config.id;
  }

  start(): void {
    this.loop ??= this.run();
  }

  info(): StreamInfo {
    const now = performance.now();
    while (this.times.length && now - this.times[0]! > FPS_WINDOW_MS) this.times.shift();
    // Frames detected in the last window over the whole window: detections finish in bursts when
    // the batcher is busy, so two frames a quarter second apart are not a rate of 4.
    const fps = this.times.length / (FPS_WINDOW_MS / 1000);
    return {
      id: this.id,
      source: redactSource(this.config.source),
      state: this.state,
      frames: this.frames,
      dropped: this.dropped,
      fps: Math.round(fps * 10) / 10,
      reconnects: this.reconnects,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
      ...(this.tracking ? { counts: countsOf(this.tracking) } : {}),
    };
  }

  /** Stops taking frames; settles when the frames in detection are done and the decoder is gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.attempt?.abort();
    this.wakeSleep?.();
    await this.loop;
  }

  /** Stops at once (a second signal): kills the decoder, waits for nothing. */
  kill(): void {
    this.stopped = true;
    this.attempt?.abort();
    this.wakeSleep?.();
  }

  /**
   * The newest frame and its pixels for a reader that holds them past this turn (a JPEG encode):
   * they stay as they are (never reused for a later frame).
   */
  latestImage(): { frame: VideoFrameResult; image: RgbImage } | undefined {
    if (this.latest) this.latestTaken = true;
    return this.latest;
  }

  /** A reader holds `image` past this turn: if it is the latest frame's, its pixels are never reused. */
  keep(image: RgbImage): void {
    if (this.latest?.image === image) this.latestTaken = true;
  }

  /** Makes `frame` the latest; the previous one's memory goes back to its decoder unless a reader took it. */
  private setLatest(run: VideoDetection, frame: VideoFrameResult, image: RgbImage): void {
    const previous = this.latest;
    if (previous && !this.latestTaken) this.latestRun?.recycle(previous.image);
    this.latest = { frame, image };
    this.latestRun = run;
    this.latestTaken = false;
  }

  private fail(e: unknown): string {
    return redactText(errorMessage(e), [this.config.source]);
  }

  private async run(): Promise<void> {
    const c = this.config;
    let backoff = this.timing.backoffMs;
    // Across reconnections the tracking session and the frame numbers go on: counts are the stream's, not one connection's.
    let session: TrackSession | undefined;
    let nextFrame = 0;
    const watchdog = setInterval(() => {
      if (this.state === 'running' && performance.now() - this.lastFrameAt > this.timing.stallMs) {
        this.lastError = `no frame for ${(this.timing.stallMs / 1000).toFixed(1)} s (stalled)`;
        this.hooks.log(`stream ${c.id}: ${this.lastError}: reconnecting`);
        this.attempt?.abort();
      }
    }, Math.min(1000, this.timing.stallMs / 2));
    watchdog.unref();
    try {
      while (!this.stopped) {
        const controller = (this.attempt = new AbortController());
        const latency = new WeakMap<RgbImage, number>();
        // Frames in detection at once (live: two, the decoder keeps the newest and drops the rest;
        // a file: detect's default, 2 per pool worker, at least 4, and a whole batch so that one
        // file stream fills the engine's calls), told to the batcher with each frame: when every
        // stream is at its number, a batch goes without waiting for more.
        const concurrency = c.live ? 2 : Math.max(4, 2 * this.hooks.runners, this.hooks.batch);
        const view: FrameDetector = {
          detect: (image, options) => {
            latency.set(image, performance.now());
            return this.hooks.detect(image, { ...(options?.threshold !== undefined ? { threshold: options.threshold } : c.threshold !== undefined ? { threshold: c.threshold } : {}), ...(c.classes ? { classes: c.classes } : {}) }, concurrency);
          },
          threshold: c.threshold ?? this.hooks.threshold,
          maxMemory: this.hooks.maxMemory,
          stats: () => ({ runners: this.hooks.runners }),
        };
        const run = detectVideo(view, c.source, {
          annotate: true,
          // No output to write: workers read the frames in place (no 1 MB copy per frame into a worker).
          sharedFrames: true,
          signal: controller.signal,
          live: c.live,
          openTimeoutMs: this.timing.openTimeoutMs,
          concurrency,
          ...(c.maxFps !== undefined ? { maxFps: c.maxFps } : {}),
          // Days of running: a zone keeps the dwell of its newest DWELL_ENTRIES gone tracks (its visitor counts stay exact).
          ...(c.track ? { track: { ...c.tracking, maxDwellEntries: DWELL_ENTRIES, ...(c.lines ? { lines: c.lines } : {}), ...(c.zones ? { zones: c.zones } : {}) } } : {}),
          ...(session ? { session } : {}),
          firstFrame: nextFrame,
        });
        let droppedSeen = 0;
        const syncDropped = () => {
          const n = run.stats.dropped - droppedSeen;
          if (n > 0) {
            droppedSeen += n;
            this.dropped += n;
            this.hooks.onDropped(this, n);
          }
        };
        try {
          for await (const frame of run) {
            if (this.state !== 'running') {
              this.state = 'running';
              this.hooks.log(`stream ${c.id}: running (${redactSource(c.source)})`);
            }
            backoff = this.timing.backoffMs;
            this.lastFrameAt = performance.now();
            this.times.push(this.lastFrameAt);
            if (this.times.length > 1000) this.times.shift();
            this.frames++;
            nextFrame = frame.frame + 1;
            session ??= run.tracking;
            syncDropped();
            if (run.tracking?.counting) this.tracking = run.tracking;
            if (frame.image) this.setLatest(run, frame, frame.image);
            const t0 = frame.image ? latency.get(frame.image) : undefined;
            this.hooks.onFrame(this, frame, t0 === undefined ? 0 : (performance.now() - t0) / 1000);
          }
          syncDropped();
          this.hooks.idle();
          if (this.stopped) break;
          if (!c.live) {
            this.state = 'ended';
            if (run.stats.decodeError) this.lastError = this.fail(run.stats.decodeError);
            this.hooks.log(`stream ${c.id}: ended after ${this.frames} frames`);
            return;
          }
          if (!controller.signal.aborted) this.lastError = 'the stream ended';
        } catch (e) {
          syncDropped();
          this.hooks.idle();
          if (this.stopped) break;
          this.lastError = this.fail(e);
          this.hooks.log(`stream ${c.id}: ${this.lastError}`);
          // A source that cannot be what it says (a file gone, a refused protocol) is a configuration to fix, not a failure to retry.
          if (isDeimError(e) && CONFIG_ERRORS.has(e.code)) {
            this.state = 'failed';
            return;
          }
          if (!c.live) {
            this.state = 'ended';
            return;
          }
        }
        // Live: open it again after the backoff, forever.
        this.state = 'reconnecting';
        this.reconnects++;
        this.hooks.onReconnect(this);
        this.hooks.log(`stream ${c.id}: reconnecting in ${(backoff / 1000).toFixed(1)} s`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          this.wakeSleep = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeSleep = undefined;
        backoff = Math.min(backoff * 2, this.timing.maxBackoffMs);
      }
    } finally {
      clearInterval(watchdog);
      this.attempt = undefined;
    }
  }
}
