/**
 * The stages behind a VideoDetection (pipeline.ts), loaded on its first iteration so that an image
 * run never loads the decoder, encoder, ffmpeg, tracking or overlay code.
 */
import os from 'node:os';
import { drawDetections } from '../annotate/draw.js';
import { drawTracking } from '../annotate/overlays.js';
import { DeimError, errorMessage } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import type { Detection } from '../postprocess/types.js';
import { TrackSession, type TrackedFrame } from '../track/session.js';
import { FrameDecoder, type DecodedFrame } from './decoder.js';
import { checkWritable, FrameEncoder } from './encoder.js';
import { requireFfmpeg } from './ffmpeg.js';
import { parseRate, probeFile, type VideoInfo } from './probe.js';
import { checkLocalSource, isLiveSource } from './source.js';
import type { FrameDetector, VideoFrameResult, VideoOptions, VideoStats } from './types.js';

/** Between a VideoDetection and its stages: a failed consumer discards the output; images handed out come back. */
export interface FrameControl {
  discard: boolean;
  /** Set by the stages: gives a handed-out image's memory back to the decoder. */
  recycle?: (data: RgbImage['data']) => void;
}

/** Runs decode -> detect -> draw -> encode for one VideoDetection, keeping its live `stats`. */
export async function* runFrames(
  detector: FrameDetector,
  source: string,
  options: VideoOptions,
  stats: VideoStats,
  onTracking: (session: TrackSession | undefined) => void,
  control: FrameControl = { discard: false },
): AsyncGenerator<VideoFrameResult> {
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
  const openDecoder = (threads?: number) => FrameDecoder.open(ffmpeg, source, {
    live,
    ...(threads ? { threads } : {}),
    ...(loop ? { loop } : {}),
    ...(options.sharedFrames ? { shared: true } : {}),
    ...(options.openTimeoutMs !== undefined ? { openTimeoutMs: options.openTimeoutMs } : {}),
    ...(options.maxFps !== undefined ? { maxFps: options.maxFps } : {}),
  });
  // How many decoded frames the detector's pixel budget holds.
  const framesFit = (info: VideoInfo) => (detector.maxMemory !== undefined ? Math.floor(detector.maxMemory / (info.width * info.height * 3)) : Infinity);
  let oneThread = false;
  try {
    decoder = await openDecoder();
    // Frames too large for the budget: ffmpeg decodes (and x264 encodes) them with one thread, as
    // each thread holds frames of its own. A file is reopened so (nothing was taken from it yet).
    if (!live && framesFit(decoder.info) <= os.availableParallelism()) {
      oneThread = true;
      decoder.stop();
      decoder = await openDecoder(1);
    }
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

  // Frames handed out with their image: each may come back once (control.recycle), no other buffer.
  const handedOut = new WeakSet<object>();
  const decoding = decoder;
  control.recycle = (data) => {
    if (!handedOut.delete(data)) return;
    decoding.recycle({ index: -1, data: data as Buffer });
  };
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
        ...(oneThread ? { threads: 1 } : {}),
        ...(decoder.timeBase && !live ? { timeBase: decoder.timeBase } : {}),
      });
    }
    options.onStart?.(info);
    const draw = options.annotate === true || options.output !== undefined;
    const tracking = options.session ?? (options.track ? new TrackSession({ frameRate: info.fps, threshold: detector.threshold ?? 0.4, ...options.track }) : undefined);
    const firstFrame = options.firstFrame ?? 0;
    onTracking(tracking);
    const detectOptions = tracking ? { threshold: Math.min(tracking.threshold, tracking.tracker.options.lowThresh) } : undefined;
    // Frames in memory at once follow the detector's pixel budget: those in detection, those
    // decoded and queued, and the one being filled. Frames too large for it go one at a time.
    const fit = framesFit(info);
    // Where the budget is tight, workers read frames in place (shared memory) instead of copies.
    if (fit < 16 || options.sharedFrames) decoder.shareFrames();
    const wanted = options.concurrency ?? Math.max(4, 2 * (detector.stats?.().runners ?? os.availableParallelism()));
    const concurrency = Math.max(1, Math.min(wanted, Math.floor((fit - 1) / 2)));
    decoder.limitQueue(fit - 1 - concurrency);
    const detectFrame = (frame: DecodedFrame): Promise<Settled> => {
      const image: RgbImage = { data: frame.data, width: info.width, height: info.height, channels: 3 };
      return (detectOptions ? detector.detect(image, detectOptions) : detector.detect(image)).then(
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
      const index = settled.frame.index + firstFrame;
      const tracked: TrackedFrame | undefined = tracking?.update(index, settled.detections, settled.frame.pts);
      if (draw && tracked) drawTracking(settled.image, tracked, tracking!, options.draw);
      else if (draw) drawDetections(settled.image, settled.detections, options.draw);
      const pts = settled.frame.pts ?? index / info.fps;
      if (encoder) await encoder.write(settled.image.data, pts);
      stats.processed++;
      // A frame in the output is reported even when the stop came while it was being written: the
      // JSON lines always match the MP4's frames (the next turn of the loop stops).
      const result: VideoFrameResult = { frame: index, pts, width: info.width, height: info.height, detections: tracked ? tracked.detections : settled.detections };
      if (tracked) {
        result.tracks = tracked.tracks;
        if (tracked.counts) result.counts = tracked.counts;
      }
      if (options.annotate || options.returnImage) {
        result.image = settled.image;
        handedOut.add(settled.image.data);
      }
      yield result;
      // A frame never handed out is done with (detected, drawn, encoded): its memory serves the next.
      if (!result.image) decoder.recycle(settled.frame);
    }
    // A file whose stream opened but not one frame of it decoded: an error, not an empty success
    // (a header declaring 15000x15000 followed by too few bytes for a frame).
    if (!live && !stats.stopped && decoder.decoded === 0) {
      throw new DeimError('ERR_VIDEO', `Could not decode ${source}: its ${info.width}x${info.height} video stream has no frame that decodes (a truncated or damaged file)${decoder.decodeError ? ` (${decoder.decodeError})` : ''}`, { input: source });
    }
    // A file that ends early: ffmpeg's complaint, or else fewer frames than ffprobe counted.
    const missing = !live && !stats.stopped && framesCounted && info.frames !== undefined ? info.frames - decoder.decoded : 0;
    if (missing > 0) {
      stats.missingFrames = missing;
      stats.decodeError = decoder.decodeError ?? `the file ended after ${decoder.decoded} of its ${info.frames} frames`;
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
    if (decoder.sizeChanged) stats.sizeChanged = decoder.sizeChanged;
    await Promise.allSettled(inflight);
    // A stop or an early break finishes the file: what was written stays playable. A failed run
    // (here, or in the consumer: control.discard) leaves no output: a partial video under the
    // output's name would look complete (an earlier file there stays as it was).
    if (encoder && (failed || control.discard)) await encoder.kill();
    else if (encoder) await encoder.finish();
    stats.elapsedMs = performance.now() - started;
  }
}

type Settled = { frame: DecodedFrame; image: RgbImage; detections: Detection[] } | { frame: DecodedFrame; image: RgbImage; error: unknown };
type FrameOrError = { frame: DecodedFrame | undefined } | { error: unknown };
