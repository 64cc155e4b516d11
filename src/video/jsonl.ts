/**
 * One JSON line per frame ({"frame","pts","detections"}), written with a synchronous write per
 * line so that each line is in the file (or on stdout) as soon as its frame is done: a consumer
 * can `tail -f` it while the video runs.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { DeimError, errorMessage } from '../errors.js';
import { trackJson } from '../track/io.js';
import type { VideoFrameResult } from './pipeline.js';

/** With tracking: the frame's tracks (rounded) and counts. */
function trackFields(r: Pick<VideoFrameResult, 'tracks' | 'counts'>): Record<string, unknown> {
  if (!r.tracks) return {};
  return { tracks: r.tracks.map(trackJson), ...(r.counts ? { counts: r.counts } : {}) };
}

export class JsonlWriter {
  private readonly fd: number;
  private readonly ownsFd: boolean;
  lines = 0;

  /** `target` is a file path, or '-' for stdout. Throws ERR_OUTPUT_WRITE when it cannot be created. */
  constructor(readonly target: string) {
    if (target === '-') {
      this.fd = 1;
      this.ownsFd = false;
      return;
    }
    try {
      this.fd = openSync(target, 'w');
      this.ownsFd = true;
    } catch (err) {
      throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${target}: ${errorMessage(err)}`, { input: target, cause: err });
    }
  }

  write(result: Pick<VideoFrameResult, 'frame' | 'pts' | 'detections' | 'tracks' | 'counts'>): void {
    const line = JSON.stringify({ frame: result.frame, pts: Math.round(result.pts * 1e6) / 1e6, detections: result.detections, ...trackFields(result) }) + '\n';
    this.writeLine(line);
  }

  /** Any JSON value as one line (the tracking summary at the end). */
  writeObject(value: unknown): void {
    this.writeLine(JSON.stringify(value) + '\n');
  }

  private writeLine(line: string): void {
    try {
      // stdout goes through the stream (fd 1 may be non-blocking: writeSync could fail with EAGAIN).
      if (this.ownsFd) writeSync(this.fd, line);
      else process.stdout.write(line);
    } catch (err) {
      throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${this.target}: ${errorMessage(err)}`, { input: this.target, cause: err });
    }
    this.lines++;
  }

  close(): void {
    if (this.ownsFd) closeSync(this.fd);
  }
}
