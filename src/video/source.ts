/**
 * What kind of video source a string names: a file, an image sequence (printf pattern), or a live
 * source ffmpeg reads until stopped (network stream, webcam). Only those: URLs must use one of
 * the streaming protocols below, and ffmpeg's other protocols (concat:, file:, subfile:, pipe:,
 * data:, crypto:, ...) are refused, so a source string can never make ffmpeg read something the
 * caller did not name as a file.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { DeimError } from '../errors.js';

const VIDEO_EXTENSIONS = new Set([
  'mp4', 'm4v', 'mov', 'mkv', 'webm', 'avi', 'wmv', 'flv', 'mpg', 'mpeg', 'ts', 'mts', 'm2ts', '3gp', 'ogv', 'y4m', 'gif',
]);

/** Audio-only file types: given to `deimv2 detect`, they go to the video path, which says they have no video stream. */
const AUDIO_EXTENSIONS = new Set(['m4a', 'mp3', 'aac', 'wav', 'flac', 'ogg', 'oga', 'opus', 'wma', 'aiff', 'aif', 'ac3', 'amr', 'mka']);

/** True for a file name of an audio-only type (song.mp3, voice.m4a). */
export function isAudioFile(source: string): boolean {
  const ext = /\.([a-z0-9]+)$/i.exec(source)?.[1]?.toLowerCase();
  return ext !== undefined && AUDIO_EXTENSIONS.has(ext);
}

/** The URL schemes accepted for video sources (live streams and remote files). */
export const STREAM_PROTOCOLS = ['rtsp', 'rtsps', 'rtmp', 'rtmps', 'http', 'https', 'udp', 'tcp', 'srt', 'rtp'] as const;
const LIVE_URL = new RegExp(`^(${STREAM_PROTOCOLS.join('|')})://`, 'i');
/** Anything ffmpeg would read as "protocol:rest" (its scheme characters, then a colon). */
const SCHEME = /^([a-z0-9+.-]+):/i;
/** A Windows drive letter, which ffmpeg reads as a path, not a protocol. */
const DOS_PATH = /^[a-z]:[\\/]/i;
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

/**
 * Input options for ffmpeg: the protocol whitelist, and bounds on how long opening or reading a
 * live source may stall. UDP and RTP never signal an end, so a source silent for `stallMs` ends
 * the run (ffmpeg's -timeout) instead of waiting forever.
 */
export function ffmpegInputOptions(source: string, stallMs = 15_000): string[] {
  // Live streams: analyse one second of stream, not five, before the first frame comes out.
  const quickStart = ['-analyzeduration', '1000000', '-probesize', '2000000'];
  const whitelist = protocolWhitelist(source);
  if (/^rtsps?:\/\//i.test(source)) return [...whitelist, '-rtsp_transport', 'tcp', '-timeout', '5000000', ...quickStart];
  if (/^https?:\/\//i.test(source)) return [...whitelist, '-rw_timeout', '5000000', ...quickStart];
  if (/^(udp|rtp):\/\//i.test(source)) return [...whitelist, '-timeout', String(Math.round(stallMs * 1000)), ...quickStart];
  if (LIVE_URL.test(source)) return [...whitelist, ...quickStart];
  if (WEBCAM.test(source)) return ['-f', 'v4l2'];
  return whitelist;
}

/**
 * The protocols ffmpeg may open for each accepted URL scheme, nested opens included (HLS
 * segments and keys, redirects, RTP under RTSP, TLS under the "s" variants). None of ffmpeg's
 * local or pseudo-protocols (file, concat, subfile, pipe, data, ...) is on any list, so a remote
 * playlist or a redirect can never make ffmpeg read a local file.
 */
const URL_WHITELIST: Record<(typeof STREAM_PROTOCOLS)[number], string> = {
  http: 'http,https,tcp,tls,crypto,httpproxy',
  https: 'http,https,tcp,tls,crypto,httpproxy',
  rtsp: 'rtsp,rtsps,rtp,srtp,udp,tcp,tls',
  rtsps: 'rtsp,rtsps,rtp,srtp,udp,tcp,tls',
  rtmp: 'rtmp,rtmps,tcp,tls',
  rtmps: 'rtmp,rtmps,tcp,tls',
  udp: 'udp',
  tcp: 'tcp',
  srt: 'srt',
  rtp: 'rtp,udp',
};

/**
 * ffmpeg/ffprobe input options that keep a source to what it names: a local file or sequence to
 * local files (a playlist inside one, HLS or ffconcat, cannot reach the network), a URL to its own
 * scheme's protocols (URL_WHITELIST). None for webcams (v4l2 opens the device itself).
 */
export function protocolWhitelist(source: string): string[] {
  if (WEBCAM.test(source)) return [];
  const scheme = LIVE_URL.exec(source)?.[1]?.toLowerCase() as keyof typeof URL_WHITELIST | undefined;
  return ['-protocol_whitelist', scheme === undefined ? 'file' : URL_WHITELIST[scheme]];
}

/**
 * Checks a video source before ffmpeg sees it: a URL must use one of STREAM_PROTOCOLS
 * (ERR_VIDEO_SOURCE otherwise, for ffmpeg's pseudo-protocols such as concat: or pipe: too);
 * a local file (not a pattern, URL or device) must exist (ERR_INPUT_NOT_FOUND), not be a
 * directory, and not be empty. A local file whose name merely looks like "word:..." is read as
 * that file (see ffmpegInputPath).
 */
export function checkLocalSource(source: string): void {
  if (isLiveSource(source)) return;
  const scheme = SCHEME.exec(source)?.[1];
  if (scheme !== undefined && !DOS_PATH.test(source) && !existsSync(source)) {
    if ((STREAM_PROTOCOLS as readonly string[]).includes(scheme.toLowerCase())) {
      throw new DeimError('ERR_VIDEO_SOURCE', `${source}: not a valid ${scheme} URL (expected ${scheme.toLowerCase()}://host/...)`, { input: source });
    }
    throw new DeimError(
      'ERR_VIDEO_SOURCE',
      `${source}: the "${scheme}:" protocol is not accepted as a video source; give a local file, an image-sequence pattern, a webcam (/dev/videoN) or a ${STREAM_PROTOCOLS.join(', ')} URL`,
      { input: source },
    );
  }
  if (isImageSequence(source) || WEBCAM.test(source)) return;
  if (!existsSync(source)) throw new DeimError('ERR_INPUT_NOT_FOUND', `Video not found: ${source}`, { input: source });
  const stats = statSync(source);
  if (stats.isDirectory()) {
    throw new DeimError('ERR_VIDEO', `${source} is a directory, not a video (for an image sequence pass a pattern such as dir/%04d.jpg)`, { input: source });
  }
  // A FIFO, socket or device (other than a webcam) cannot be read as a file: ffprobe, the decoder
  // and the audio copy each open the file, and each would take part of a pipe's bytes (or wait
  // forever for a writer). A stream belongs on a URL (udp://, tcp://, rtsp://...).
  if (!stats.isFile()) {
    const kind = stats.isFIFO() ? 'a FIFO (named pipe)' : stats.isSocket() ? 'a socket' : 'a device';
    throw new DeimError(
      'ERR_VIDEO_SOURCE',
      `${source} is ${kind}, not a video file: a video file is read more than once (its frame count, its frames, its audio); save the video to a file, or send it as a stream (udp://, tcp://, rtsp://...)`,
      { input: source },
    );
  }
  if (stats.size === 0) throw new DeimError('ERR_INPUT_EMPTY', `Video file is empty: ${source}`, { input: source });
}

/**
 * The source as ffmpeg's `-i` (and ffprobe) must get it: URLs unchanged, and local paths that
 * ffmpeg would otherwise read as a protocol ("concat:x.mp4") or an option-like name ("-") made
 * explicit with "./", so they always name the local file that checkLocalSource checked.
 */
export function ffmpegInputPath(source: string): string {
  if (isLiveSource(source) || path.isAbsolute(source) || DOS_PATH.test(source)) return source;
  if (SCHEME.test(source) || source.startsWith('-')) return `.${path.sep}${source}`;
  return source;
}
