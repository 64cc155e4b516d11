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
import { DeimError } from '../errors.js';
import { checkTrackSessionOptions } from '../track/check.js';
import type { RgbImage } from '../image/types.js';
import type { TrackSession } from '../track/session.js';
import type { FrameControl } from './frames.js';
import type { FrameDetector, VideoFrameResult, VideoOptions, VideoStats } from './types.js';

export type { FrameDetector, VideoFrameResult, VideoOptions, VideoStats } from './types.js';

/**
 * An ongoing video detection: iterate it (once) for per-frame results; `stats` is live.
 */
export class VideoDetection implements AsyncIterable<VideoFrameResult> {
  readonly stats: VideoStats = { info: undefined, decoded: 0, processed: 0, dropped: 0, stopped: false, decodeError: undefined, missingFrames: 0, elapsedMs: 0 };
  private iterated = false;
  /** With `track`: the tracking session (its summary() holds the counts so far). */
  tracking: TrackSession | undefined;
  private readonly control: FrameControl = { discard: false };

  constructor(
    private readonly detector: FrameDetector,
    readonly source: string,
    private readonly options: VideoOptions = {},
  ) {
    if (options.track) checkTrackSessionOptions(options.track); // bad lines, zones or options fail here, before any decoding
  }

  [Symbol.asyncIterator](): AsyncIterator<VideoFrameResult> {
    if (this.iterated) throw new DeimError('ERR_INVALID_ARGUMENT', 'a VideoDetection can be iterated only once; call detectVideo again');
    this.iterated = true;
    return this.run();
  }

  /**
   * For a consumer whose own work failed mid-run: call it before leaving the loop (break or throw)
   * and `output` is not written (a video with only the frames before the failure would look
   * complete; an earlier file there stays as it was). Leaving the loop without it finishes the
   * output with the frames written so far, as a stop does.
   */
  discardOutput(): void {
    this.control.discard = true;
  }

  /**
   * Gives the memory of a frame's `image` (annotate / returnImage) back to the decoder once the
   * consumer is done with it (nothing reads or writes it any more): the next frames reuse it
   * instead of allocating (a frame a megabyte or more: garbage that costs GC time on every frame).
   * Only images this run handed out are taken, each once; anything else is ignored.
   */
  recycle(image: RgbImage): void {
    this.control.recycle?.(image.data);
  }

  /** The stages (frames.ts) load on the first iteration: an image run never loads them. */
  private async *run(): AsyncGenerator<VideoFrameResult> {
    const { runFrames } = await import('./frames.js');
    yield* runFrames(this.detector, this.source, this.options, this.stats, (session) => {
      this.tracking = session;
    }, this.control);
  }
}

/**
 * Detects objects in every frame of a video file, image sequence or live source.
 * Errors (thrown by the iteration): ERR_INPUT_NOT_FOUND, ERR_VIDEO (not a video, unreachable
 * stream), ERR_FFMPEG_NOT_FOUND, ERR_OUTPUT_WRITE. A truncated file is not an error: the frames
 * that decode are processed and `stats.decodeError` / `stats.missingFrames` say what was lost.
 */
export function detectVideo(detector: FrameDetector, source: string, options: VideoOptions = {}): VideoDetection {
  if (typeof source !== 'string' || source === '') throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a file path or URL for source but received ${JSON.stringify(source)}`);
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected an options object for detectVideo but received ${options === null ? 'null' : Array.isArray(options) ? 'an array' : typeof options}`);
  }
  const { signal } = options as { signal?: unknown };
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', 'Expected an AbortSignal (new AbortController().signal) for options.signal of detectVideo');
  }
  return new VideoDetection(detector, source, options);
}
