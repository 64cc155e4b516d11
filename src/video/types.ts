/** The video pipeline's public types (pipeline.ts re-exports them; frames.ts runs the stages). */
import type { DrawOptions } from '../annotate/draw.js';
import type { RgbImage } from '../image/types.js';
import type { Detection, DetectionResult } from '../postprocess/types.js';
import type { FrameCounts, TrackSession, TrackSessionOptions } from '../track/session.js';
import type { Track } from '../track/tracker.js';
import type { VideoInfo } from './probe.js';

/** What the pipeline needs from a detector: Detector satisfies it; concurrent calls must be allowed. */
export interface FrameDetector {
  detect(image: RgbImage, options?: { threshold?: number }): Promise<DetectionResult>;
  /** The detector's score threshold: with tracking, what is returned and drawn (default 0.4). */
  readonly threshold?: number;
  /** Parallel runners (the pool's workers), used to size how many frames are in flight. */
  stats?(): { runners: number };
  /** Bytes of decoded pixels to hold at once: bounds the frames queued and in flight. */
  readonly maxMemory?: number;
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
  /** Frames in detection at once (default: 2 per pool worker, at least 4; fewer when frames are so large that the detector's maxMemory holds fewer). */
  concurrency?: number;
  /**
   * Decode frames into shared memory, so that pool workers read them in place instead of each
   * frame being copied into a worker by postMessage (a 768x432 frame: 1 MB copied, then garbage on
   * both sides). For consumers that write no output (the service); always on where the pixel
   * budget is tight.
   */
  sharedFrames?: boolean;
  /** Read a file this many extra times (benchmarks). */
  loop?: number;
  /** Give up opening the source after this long (default 15 s); a UDP/RTP source silent this long also ends the run. */
  openTimeoutMs?: number;
  /** Live sources: detect at most this many frames a second (the others are skipped, not counted as dropped). */
  maxFps?: number;
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
  /** Go on with this tracking session (a live stream opened again): its tracks and counts continue; `track` is then not used. */
  session?: TrackSession;
  /** Number the frames from this index on (a stream opened again goes on with its numbering; default 0). */
  firstFrame?: number;
  /** Called once the stream is open, with its size, rate and (for files) frame count. */
  onStart?: (info: VideoInfo) => void;
}

export interface VideoFrameResult {
  /**
   * Frame index in the source: files, every source frame once in order (never a duplicated or dropped frame, at any frame rate);
   * live sources: dropped frames leave gaps. A damaged file's frames that do not decode leave no gap (frames are numbered as
   * read; `stats.decodeError` is then set): `pts` still places each frame in the source.
   */
  frame: number;
  /** Presentation time in seconds: files, the source frame's own timestamp (from the start of the file; a variable-rate file keeps its uneven times); live sources, frame / fps. */
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
  /**
   * Set when the frame size changed mid-stream (two resolutions concatenated): from `frame` on,
   * ffmpeg scaled the frames from `to` to the first size `from`, which every result's
   * width/height and boxes are in.
   */
  sizeChanged?: { frame: number; from: string; to: string };
  elapsedMs: number;
}
