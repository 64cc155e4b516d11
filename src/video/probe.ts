/**
 * Stream facts: frame size, rate, count, audio. ffmpeg's own log (the "Input #0" / "Output #0"
 * blocks the decoder prints before its first frame) gives size and rate for every source, live
 * ones included; ffprobe, when it is installed, adds the exact rational rate and frame count of
 * files (for the progress bar's ETA and for the truncation report).
 */
import { execFile } from 'node:child_process';
import { ffmpegInputPath, protocolWhitelist } from './source.js';

export interface VideoInfo {
  /** Frame size the decoder delivers (after rotation metadata is applied). */
  width: number;
  height: number;
  /** Frames per second as a number, and as the exact text ffmpeg takes for -r ("25/2"). */
  fps: number;
  fpsText: string;
  /** Frames in the file when known (ffprobe nb_frames, or duration x fps); undefined for live sources. */
  frames?: number;
  /** Duration in seconds when known. */
  durationS?: number;
  hasAudio: boolean;
}

/** A rate as ffmpeg prints it rounded ("29.97") back to its usual exact form ("30000/1001"). */
export function exactRate(printed: number): string {
  const ntsc = Math.round(printed * 1.001);
  if (ntsc > 1 && Math.abs(printed - (ntsc * 1000) / 1001) < 0.006 && Math.abs(printed - ntsc) > 0.006) return `${ntsc * 1000}/1001`;
  return String(printed);
}

export function parseRate(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const [num, den] = text.split('/').map(Number);
  const value = den === undefined ? num : num / den;
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/**
 * Reads the decoder's log: the output video stream line gives the delivered size and rate, the
 * input block gives duration and audio. Returns undefined until the output stream line is there.
 */
export function parseFfmpegLog(log: string): VideoInfo | undefined {
  const outputAt = log.indexOf('Output #0');
  if (outputAt < 0) return undefined;
  const outputVideo = /Stream #\d+:\d+.*?: Video: .*?\b(\d{1,5})x(\d{1,5})\b[^\n]*/.exec(log.slice(outputAt));
  if (!outputVideo) return undefined;
  const input = log.slice(0, outputAt);
  const rate = /(\d+(?:\.\d+)?) (?:fps|tbr)/.exec(outputVideo[0])?.[1] ?? /Video: [^\n]*?(\d+(?:\.\d+)?) (?:fps|tbr)/.exec(input)?.[1];
  const fps = rate ? Number(rate) : 25;
  const duration = /Duration: (\d+):(\d+):(\d+(?:\.\d+)?)/.exec(input);
  const durationS = duration ? Number(duration[1]) * 3600 + Number(duration[2]) * 60 + Number(duration[3]) : undefined;
  const info: VideoInfo = {
    width: Number(outputVideo[1]),
    height: Number(outputVideo[2]),
    fps,
    fpsText: exactRate(fps),
    hasAudio: /Stream #0:\d+[^\n]*: Audio:/.test(input),
  };
  if (durationS !== undefined) {
    info.durationS = durationS;
    info.frames = Math.round(durationS * fps);
  }
  return info;
}

export interface ProbeFacts {
  fpsText?: string;
  frames?: number;
  durationS?: number;
}

/** ffprobe's rate and frame count for a file; {} when ffprobe is missing or fails (never throws). */
export function probeFile(ffprobePath: string | undefined, file: string, timeoutMs = 15_000): Promise<ProbeFacts> {
  if (!ffprobePath) return Promise.resolve({});
  const args = ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'stream=r_frame_rate,nb_frames,duration', '-of', 'json', ...protocolWhitelist(file), ffmpegInputPath(file)];
  return new Promise((resolve) => {
    execFile(ffprobePath, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout) => {
      if (err) return resolve({});
      try {
        const stream = (JSON.parse(stdout) as { streams?: Array<Record<string, string>> }).streams?.[0] ?? {};
        const facts: ProbeFacts = {};
        if (parseRate(stream.r_frame_rate)) facts.fpsText = stream.r_frame_rate;
        const frames = Number(stream.nb_frames);
        if (Number.isInteger(frames) && frames > 0) facts.frames = frames;
        const duration = Number(stream.duration);
        if (Number.isFinite(duration) && duration > 0) facts.durationS = duration;
        resolve(facts);
      } catch {
        resolve({});
      }
    });
  });
}
