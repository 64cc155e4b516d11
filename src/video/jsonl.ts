/**
 * One JSON line per frame ({"frame","pts","detections"}), written with a synchronous write per
 * line, so whole lines only. A file is written under a temporary name beside it (a consumer can
 * `tail -f` that one) and renamed onto its name when closed, Ctrl-C included; a run that wrote
 * no line leaves no file. On stdout each line goes out as soon as its frame is done.
 */
import { closeSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { DeimError, errorMessage } from '../errors.js';
import { AtomicFile } from '../output/atomic.js';
import { trackJson } from '../track/io.js';
import type { VideoFrameResult } from './pipeline.js';

/** With tracking: the frame's tracks (rounded) and counts. */
function trackFields(r: Pick<VideoFrameResult, 'tracks' | 'counts'>): Record<string, unknown> {
  if (!r.tracks) return {};
  return { tracks: r.tracks.map(trackJson), ...(r.counts ? { counts: r.counts } : {}) };
}

/** The JSON-lines record of one frame, as `detect --json` writes it (and `serve` sends it as an event). */
export function frameRecord(result: Pick<VideoFrameResult, 'frame' | 'pts' | 'detections' | 'tracks' | 'counts'>): Record<string, unknown> {
  return { frame: result.frame, pts: Math.round(result.pts * 1e6) / 1e6, detections: result.detections, ...trackFields(result) };
}

export class JsonlWriter {
  private readonly fd: number;
  private readonly ownsFd: boolean;
  private readonly file: AtomicFile | undefined;
  private closed = false;
  /** A write failed (a full disk): the file is never renamed onto the target, which stays as it was. */
  private failed = false;
  /** Bytes of whole lines in the file. */
  private bytes = 0;
  lines = 0;

  /** `target` is a file path, or '-' for stdout. Throws ERR_OUTPUT_WRITE when it cannot be created. */
  constructor(readonly target: string) {
    if (target === '-') {
      this.fd = 1;
      this.ownsFd = false;
      return;
    }
    try {
      this.file = new AtomicFile(target);
      this.fd = openSync(this.file.path, 'w');
      this.ownsFd = true;
    } catch (err) {
      this.file?.discard();
      throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${target}: ${errorMessage(err)}`, { input: target, cause: err });
    }
  }

  write(result: Pick<VideoFrameResult, 'frame' | 'pts' | 'detections' | 'tracks' | 'counts'>): void {
    const line = JSON.stringify(frameRecord(result)) + '\n';
    this.writeLine(line);
  }

  /** Any JSON value as one line (the tracking summary at the end). */
  writeObject(value: unknown): void {
    this.writeLine(JSON.stringify(value) + '\n');
  }

  private writeLine(line: string): void {
    if (this.closed) return; // discarded (a failed run): nothing more goes out
    try {
      // stdout goes through the stream (fd 1 may be non-blocking: writeSync could fail with EAGAIN).
      if (this.ownsFd) {
        const data = Buffer.from(line);
        for (let off = 0; off < data.length; ) off += writeSync(this.fd, data, off);
        this.bytes += data.length;
      } else process.stdout.write(line);
    } catch (err) {
      // A full disk: cut the part of a line written, so the temporary file stays whole lines; it is
      // not renamed onto the target (an earlier file there stays as it was).
      this.failed = true;
      if (this.ownsFd) {
        try {
          ftruncateSync(this.fd, this.bytes);
        } catch {
          // The lines before stand; the reader sees one cut line at worst.
        }
      }
      throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${this.target}: ${errorMessage(err)}`, { input: this.target, cause: err });
    }
    this.lines++;
  }

  /** For a run that failed: removes the temporary file; an earlier file under the target stays as it was. */
  discard(): void {
    this.failed = true;
    this.close();
  }

  /** Closes the file and renames it into place (removes it when no line was written). Safe to call twice. */
  close(): void {
    if (this.closed || !this.ownsFd) return;
    this.closed = true;
    closeSync(this.fd);
    try {
      if (this.lines > 0 && !this.failed) this.file!.commitSync();
      else this.file!.discard();
    } catch (err) {
      throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${this.target}: ${errorMessage(err)}`, { input: this.target, cause: err });
    }
  }
}
