/**
 * What kind of video source a string names: a file, an image sequence (printf pattern), or a live
 * source ffmpeg reads until stopped (network stream, webcam).
 */
import { existsSync, statSync } from 'node:fs';
import { DeimError } from '../errors.js';

const VIDEO_EXTENSIONS = new Set([
  'mp4', 'm4v', 'mov', 'mkv', 'webm', 'avi', 'wmv', 'flv', 'mpg', 'mpeg', 'ts', 'mts', 'm2ts', '3gp', 'ogv', 'y4m', 'gif',
]);

const LIVE_URL = /^(rtsp|rtsps|rtmp|rtmps|http|https|udp|tcp|srt|rtp):\/\//i;
const WEBCAM = /^\/dev\/video\d+$/;
/** An ffmpeg image-sequence pattern such as frames/%04d.jpg. */
const SEQUENCE = /%0?\d*d/;

/** True for sources that run until stopped: network streams and V4L2 webcams. */
export function isLiveSource(source: string): boolean {
  return LIVE_URL.test(source) || WEBCAM.test(source);
}

/** True for an image-sequence pattern ffmpeg expands (frames/%04d.png). */
export function isImageSequence(source: string): boolean {
  return SEQUENCE.test(source);
}

/**
 * Whether `deimv2 detect` should treat the input as video: a video file extension, an image
 * sequence pattern, a stream URL or a webcam device. Decided from the name only (no I/O).
 *
 * @example
 * isVideoInput('clip.mp4') // true
 * isVideoInput('rtsp://camera/stream') // true
 * isVideoInput('photo.jpg') // false
 */
export function isVideoInput(source: string): boolean {
  if (isLiveSource(source) || isImageSequence(source)) return true;
  const ext = /\.([a-z0-9]+)$/i.exec(source)?.[1]?.toLowerCase();
  return ext !== undefined && VIDEO_EXTENSIONS.has(ext);
}

/** Input options for ffmpeg that bound how long opening or reading a live source may stall. */
export function ffmpegInputOptions(source: string): string[] {
  // Live streams: analyse one second of stream, not five, before the first frame comes out.
  const quickStart = ['-analyzeduration', '1000000', '-probesize', '2000000'];
  if (/^rtsps?:\/\//i.test(source)) return ['-rtsp_transport', 'tcp', '-timeout', '5000000', ...quickStart];
  if (/^https?:\/\//i.test(source)) return ['-rw_timeout', '5000000', ...quickStart];
  if (LIVE_URL.test(source)) return quickStart;
  if (WEBCAM.test(source)) return ['-f', 'v4l2'];
  return [];
}

/** Throws ERR_INPUT_NOT_FOUND for a local file (not a pattern, URL or device) that is not there. */
export function checkLocalSource(source: string): void {
  if (isLiveSource(source) || isImageSequence(source) || /^[a-z][a-z0-9+.-]*:/i.test(source)) return;
  if (!existsSync(source)) throw new DeimError('ERR_INPUT_NOT_FOUND', `Video not found: ${source}`, { input: source });
  if (statSync(source).isDirectory()) {
    throw new DeimError('ERR_VIDEO', `${source} is a directory, not a video (for an image sequence pass a pattern such as dir/%04d.jpg)`, { input: source });
  }
  if (statSync(source).size === 0) throw new DeimError('ERR_INPUT_EMPTY', `Video file is empty: ${source}`, { input: source });
}
