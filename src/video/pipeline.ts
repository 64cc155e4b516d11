/**
 * The video pipeline: decode -> detect -> draw -> encode as overlapping stages instead of one
 * after another. ffmpeg decodes a few frames ahead in its own process; several frames are in
 * detection at once (the detector's worker pool resizes and infers them in parallel); results are
 * taken back in frame order, drawn, and piped to a second ffmpeg that encodes behind. Every queue
 * is bounded, so memory stays flat however long the video.
 *
 * @example
 * const controller = new AbortController();
 * const run = detectVideo(detector, 'clip.mp4', { output: 'annotated.mp4', signal: controller.signal });
 * for await (const { frame, pts, detections } of run) console.log(frame, pts, detections.length);
 * console.log(run.stats);
 */
import os from 'node:os';
import { drawDetections, type DrawOptions } from '../annotate/draw.js';
import { DeimError, errorMessage } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import type { Detection, DetectionResult } from '../postprocess/types.js';
import { drawTracking } from '../annotate/overlays.js';
import { TrackSession, type FrameCounts, type TrackedFrame, type TrackSessionOptions } from '../track/session.js';
import type { Track } from '../track/tracker.js';
import { FrameDecoder, type DecodedFrame } from './decoder.js';
import { checkWritable, FrameEncoder } from './encoder.js';
import { requireFfmpeg } from './ffmpeg.js';
import { parseRate, probeFile, type VideoInfo } from './probe.js';
import { checkLocalSource, isLiveSource } from './source.js';

/** What the pipeline needs from a detector: Detector satisfies it; concurrent calls must be allowed. */
export interface FrameDetector {
  detect(image: RgbImage, options?: { threshold?: number }): Promise<DetectionResult>;
  /** The detector's score threshold: with tracking, what is returned and drawn (default 0.4). */
  readonly threshold?: number;
  /** Parallel runners (the pool's workers), used to size how many frames are in flight. */
  stats?(): { runners: number };
}

export interface VideoOptions {
  /** Write the annotated video here (H.264 MP4, the input's size, rate and frame count; audio kept). */
  output?: string;
  /** Draw the detections on each frame and return it as `image`. */
  annotate?: boolean;
  /** Return each frame's RGB pixels as `image` (annotated when `annotate` or `output` is set). */
  returnImage?: boolean;
  /** Stops reading the source: no frame is yielded or written after it, the output is closed, iteration ends. */
  signal?: AbortSignal;
  /** Treat the source as live (default: rtsp/http/udp/... URLs and /dev/video*). */
  live?: boolean;
  /** Frames in detection at once (default: 2 per pool worker, at least 4). */
  concurrency?: number;
  /** Read a file this many extra times (benchmarks). */
  loop?: number;
  /** Give up opening the source after this long (default 15 s). */
  openTimeoutMs?: number;
  /** Keep the input's audio in `output` (default true; files only). */
  keepAudio?: boolean;
  /** x264 preset for `output` (default ultrafast: the cheapest; see encoder.ts for the measured costs). */
  preset?: string;
  draw?: DrawOptions;
  /**
   * Track objects (ByteTrack): each detection gets `trackId`, frames get `tracks` and, with lines
   * or zones, `counts`. The detector then passes every detection above the tracker's low
   * threshold (0.1) to the tracker; only those above the detector's own threshold (or
   * `track.threshold`) are returned and drawn. frameRate defaults to the video's.
   */
  track?: TrackSessionOptions;
  /** Called once the stream is open, with its size, rate and (for files) frame count. */
  onStart?: (info: VideoInfo) => void;
}

export interface VideoFrameResult {
  /** Frame index in the source (live sources: dropped frames leave gaps). */
  frame: number;
  /** Presentation time in seconds (frame / fps). */
  pts: number;
  width: number;
  height: number;
  detections: Array<Detection & { trackId?: number }>;
  /** With `track`: the tracks confirmed in this frame (Kalman-filtered boxes). */
  tracks?: Track[];
  /** With `track` and lines or zones: crossings, totals and zone occupancy. */
  counts?: FrameCounts;
  /** The frame's RGB pixels, when `annotate` or `returnImage` is set. Shared with the encoder: copy before changing. */
  image?: RgbImage;
}

export interface VideoStats {
  info: VideoInfo | undefined;
  /** Frames decoded from the source. */
  decoded: number;
  /** Frames detected (and written, when there is an output). */
  processed: number;
  /** Frames dropped because detection was slower than a live source. */
  dropped: number;
  /** True when the run was stopped through the signal. */
  stopped: boolean;
  /** The decoder's error when a file ended early (truncated); the frames before it were processed. */
  decodeError: string | undefined;
  /** Frames the file should have had but that did not decode (when known). */
  missingFrames: number;
  elapsedMs: number;
}

/**
 * An ongoing video detection: iterate it (once) for per-frame results; `stats` is live.
 */
export class VideoDetection implements AsyncIterable<VideoFrameResult> {
  readonly stats: VideoStats = { info: undefined, decoded: 0, processed: 0, dropped: 0, stopped: false, decodeError: undefined, missingFrames: 0, elapsedMs: 0 };
  private iterated = false;
  /** With `track`: the tracking session (its summary() holds the counts so far). */
  tracking: TrackSession | undefined;

  constructor(
    private readonly detector: FrameDetector,
    readonly source: string,
    private readonly options: VideoOptions = {},
  ) {
    if (options.track) new TrackSession(options.track); // bad lines, zones or options fail here, before any decoding
  }

  [Symbol.asyncIterator](): AsyncIterator<VideoFrameResult> {
    if (this.iterated) throw new DeimError('ERR_INVALID_ARGUMENT', 'a VideoDetection can be iterated only once; call detectVideo again');
    this.iterated = true;
    return this.run();
  }

  private async *run(): AsyncGenerator<VideoFrameResult> {
    const { options, source, stats } = this;
    const started = performance.now();
    const ffmpeg = requireFfmpeg();
    checkLocalSource(source);
    if (options.output) checkWritable(options.output, source);
    if (options.signal?.aborted) {
      stats.stopped = true;
      return;
    }
    const live = options.live ?? isLiveSource(source);
    const loop = options.loop ?? 0;
    const probed = live ? Promise.resolve({}) : probeFile(ffmpeg.ffprobePath, source);
    let decoder: FrameDecoder | undefined;
    const onAbort = () => {
      stats.stopped = true;
      decoder?.stop();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      decoder = await FrameDecoder.open(ffmpeg, source, {
        live,
        ...(loop ? { loop } : {}),
        ...(options.openTimeoutMs !== undefined ? { openTimeoutMs: options.openTimeoutMs } : {}),
      });
    } catch (e) {
      options.signal?.removeEventListener('abort', onAbort);
      throw e;
    }
    if (stats.stopped) {
      // Stopped while the source was opening: nothing was decoded, nothing is written.
      decoder.stop();
      stats.elapsedMs = performance.now() - started;
      return;
    }

    const facts = await probed.catch(() => ({}) as Awaited<ReturnType<typeof probeFile>>);
    const info: VideoInfo = { ...decoder.info };
    if ('fpsText' in facts && facts.fpsText) {
      info.fpsText = facts.fpsText;
      info.fps = parseRate(facts.fpsText) ?? info.fps;
    }
    // ffprobe's nb_frames is a count; duration x fps (from the log) is only an estimate.
    const framesCounted = 'frames' in facts && facts.frames !== undefined;
    if ('frames' in facts && facts.frames) info.frames = facts.frames * (loop + 1);
    else if (info.frames !== undefined) info.frames *= loop + 1;
    if (live) delete info.frames;
    stats.info = info;

    let encoder: FrameEncoder | undefined;
    const inflight: Array<Promise<Settled>> = [];
    let failed = false;
    try {
      if (options.output) {
        const keepAudio = (options.keepAudio ?? true) && info.hasAudio && !live && loop === 0;
        encoder = new FrameEncoder(ffmpeg, options.output, {
          width: info.width, height: info.height, fpsText: info.fpsText, live,
          ...(keepAudio ? { audioFrom: source } : {}),
          ...(options.preset ? { preset: options.preset } : {}),
        });
      }
      options.onStart?.(info);
      const draw = options.annotate === true || options.output !== undefined;
      const tracking = options.track ? new TrackSession({ frameRate: info.fps, threshold: this.detector.threshold ?? 0.4, ...options.track }) : undefined;
      this.tracking = tracking;
      const detectOptions = tracking ? { threshold: Math.min(tracking.threshold, tracking.tracker.options.lowThresh) } : undefined;
      const concurrency = options.concurrency ?? Math.max(4, 2 * (this.detector.stats?.().runners ?? os.availableParallelism()));
      const detectFrame = (frame: DecodedFrame): Promise<Settled> => {
        const image: RgbImage = { data: frame.data, width: info.width, height: info.height, channels: 3 };
        return (detectOptions ? this.detector.detect(image, detectOptions) : this.detector.detect(image)).then(
          (result) => ({ frame, image, detections: result.detections }),
          (error: unknown) => ({ frame, image, error }),
        );
      };

      // Keep `concurrency` frames in detection; whichever comes first, a decoded frame (start it)
      // or the oldest detection (emit it), is taken, so neither stage waits on the other.
      let nextFrame: Promise<FrameOrError> | undefined;
      let sourceDone = false;
      for (;;) {
        if (!sourceDone && inflight.length < concurrency) {
          nextFrame ??= decoder.next().then((f) => ({ frame: f }), (error: unknown) => ({ error }));
          const step = inflight.length === 0 ? await nextFrame : await Promise.race([nextFrame, inflight[0]!.then(() => 'head' as const)]);
          if (step !== 'head') {
            nextFrame = undefined;
            if ('error' in step) throw step.error;
            if (step.frame) inflight.push(detectFrame(step.frame));
            else sourceDone = true;
            stats.decoded = decoder.decoded;
            stats.dropped = decoder.dropped;
            continue;
          }
        }
        const done = inflight.shift();
        if (!done) break;
        const settled = await done;
        // Stopped: frames still in detection are dropped, not yielded nor written.
        if (stats.stopped) break;
        if ('error' in settled) {
          throw new DeimError('ERR_VIDEO', `Detection failed on frame ${settled.frame.index} of ${source}: ${errorMessage(settled.error)}`, { input: source, cause: settled.error });
        }
        const tracked: TrackedFrame | undefined = tracking?.update(settled.frame.index, settled.detections);
        if (draw && tracked) drawTracking(settled.image, tracked, tracking!, options.draw);
        else if (draw) drawDetections(settled.image, settled.detections, options.draw);
        if (encoder) await encoder.write(settled.image.data);
        stats.processed++;
        if (stats.stopped) break; // stopped while the frame was being written
        const result: VideoFrameResult = { frame: settled.frame.index, pts: settled.frame.index / info.fps, width: info.width, height: info.height, detections: tracked ? tracked.detections : settled.detections };
        if (tracked) {
          result.tracks = tracked.tracks;
          if (tracked.counts) result.counts = tracked.counts;
        }
        if (options.annotate || options.returnImage) result.image = settled.image;
        yield result;
      }
      // A file that ends early: ffmpeg's complaint, or else fewer frames than ffprobe counted.
      const missing = !live && !stats.stopped && framesCounted && info.frames !== undefined ? info.frames - decoder.decoded : 0;
      if (missing > 0) {
        stats.missingFrames = missing;
        stats.decodeError = decoder.decodeError ?? `${missing} of ${info.frames} frames did not decode`;
      } else {
        stats.decodeError = decoder.decodeError;
      }
    } catch (e) {
      failed = true;
      throw e;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      decoder.stop();
      stats.decoded = decoder.decoded;
      stats.dropped = decoder.dropped;
      await Promise.allSettled(inflight);
      // Finish the file even after a failure or an early break: what was written stays playable.
      if (encoder) {
        const finishing = encoder.finish();
        if (failed) await finishing.catch(() => undefined);
        else await finishing;
      }
      stats.elapsedMs = performance.now() - started;
    }
  }
}

type Settled = { frame: DecodedFrame; image: RgbImage; detections: Detection[] } | { frame: DecodedFrame; image: RgbImage; error: unknown };
type FrameOrError = { frame: DecodedFrame | undefined } | { error: unknown };

/**
 * Detects objects in every frame of a video file, image sequence or live source.
 * Errors (thrown by the iteration): ERR_INPUT_NOT_FOUND, ERR_VIDEO (not a video, unreachable
 * stream), ERR_FFMPEG_NOT_FOUND, ERR_OUTPUT_WRITE. A truncated file is not an error: the frames
 * that decode are processed and `stats.decodeError` / `stats.missingFrames` say what was lost.
 */
export function detectVideo(detector: FrameDetector, source: string, options: VideoOptions = {}): VideoDetection {
  if (typeof source !== 'string' || source === '') throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a file path or URL for source but received ${JSON.stringify(source)}`);
  return new VideoDetection(detector, source, options);
}
