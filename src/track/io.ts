/**
 * Track files: reading the detection JSONL that `deimv2 detect <video> --json` writes, and writing
 * tracks as JSON lines and in the MOTChallenge text format.
 */
import { AtomicFile } from '../output/atomic.js';
import { closeSync, existsSync, openSync, statSync, writeSync } from 'node:fs';
import { readLinesBounded } from '../input/limits.js';
import { checkFrameDetections } from './check.js';
import { DeimError, errorMessage } from '../errors.js';
import type { Detection } from '../postprocess/types.js';
import type { Track } from './tracker.js';

export interface DetectionFrame {
  frame: number;
  pts?: number;
  detections: Detection[];
  /** 1-based line number in the file. */
  line: number;
}

function bad(file: string, line: number, problem: string): DeimError {
  return new DeimError('ERR_INPUT_UNREADABLE', `${file} line ${line}: ${problem}`, { input: file });
}

function checkFileDetection(d: unknown, file: string, line: number, k: number): Detection {
  const where = `detection ${k}`;
  if (typeof d !== 'object' || d === null) throw bad(file, line, `${where} is not an object`);
  const o = d as Record<string, unknown>;
  const box = o.box;
  if (!Array.isArray(box) || box.length !== 4) throw bad(file, line, `${where}: box must be [x1, y1, x2, y2], got ${JSON.stringify(box)}`);
  // JSON has no NaN: a null (or a string) is what a NaN becomes.
  if (!box.every((v) => typeof v === 'number' && Number.isFinite(v))) throw bad(file, line, `${where}: box ${JSON.stringify(box)} has a value that is not a finite number`);
  const [x1, y1, x2, y2] = box as number[];
  if (x1! < 0 || y1! < 0) throw bad(file, line, `${where}: box ${JSON.stringify(box)} has a negative coordinate (deimv2 detect writes boxes clipped to the image)`);
  if (x2! < x1! || y2! < y1!) throw bad(file, line, `${where}: box ${JSON.stringify(box)} has a negative width or height`);
  if (typeof o.score !== 'number' || !(o.score >= 0 && o.score <= 1)) throw bad(file, line, `${where}: score must be a number from 0 to 1, got ${JSON.stringify(o.score)}`);
  const classId = o.classId ?? 0;
  if (typeof classId !== 'number' || !Number.isInteger(classId) || classId < 0) throw bad(file, line, `${where}: classId must be an integer >= 0, got ${JSON.stringify(o.classId)}`);
  return {
    label: typeof o.label === 'string' ? o.label : `class ${classId}`,
    classId,
    categoryId: typeof o.categoryId === 'number' ? o.categoryId : classId,
    score: o.score,
    box: [x1!, y1!, x2!, y2!],
  };
}

/**
 * Reads a detection JSONL file frame by frame (streamed; a line over INPUT_LIMITS.maxLineBytes is
 * ERR_INPUT_TOO_LARGE, a frame over MAX_FRAME_DETECTIONS is ERR_TOO_MANY_DETECTIONS) (a line `{"frame", "pts", "detections": [...]}`;
 * blank lines and a trailing `{"summary": ...}` line are skipped, the summary handed to `onSummary`). Throws ERR_INPUT_NOT_FOUND,
 * or ERR_INPUT_UNREADABLE naming the file and line: not JSON lines, a line that is not a frame,
 * frames out of order, boxes that are not finite, negative or inverted, scores out of 0..1.
 */
export async function* readDetectionsJsonl(file: string, options: { onSummary?: (summary: Record<string, unknown>) => void } = {}): AsyncGenerator<DetectionFrame> {
  if (!existsSync(file)) throw new DeimError('ERR_INPUT_NOT_FOUND', `detections file not found: ${file}`, { input: file });
  if (statSync(file).isDirectory()) throw new DeimError('ERR_INPUT_UNREADABLE', `${file} is a folder, not a detections file`, { input: file });
  let last = -Infinity;
  let frames = 0;
  for await (const { text, line: n } of readLinesBounded(file)) {
    if (text.trim() === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch (e) {
      throw bad(file, n, `not a JSON line (${errorMessage(e)}); expected JSON lines {"frame", "pts", "detections"} as \`deimv2 detect <video> --json\` writes`);
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad(file, n, 'not a JSON object');
    const r = o as Record<string, unknown>;
    if ('summary' in r && !('frame' in r)) {
      // The run's own summary (tracking counts; `incomplete` for a truncated or damaged video).
      if (typeof r.summary === 'object' && r.summary !== null && !Array.isArray(r.summary)) options.onSummary?.(r.summary as Record<string, unknown>);
      continue;
    }
    if (typeof r.frame !== 'number' || !Number.isInteger(r.frame) || r.frame < 0) {
      throw bad(file, n, `"frame" must be an integer >= 0, got ${JSON.stringify(r.frame)}${'results' in r ? ' (this looks like the JSON of an image run, not of a video)' : ''}`);
    }
    if (r.frame <= last) throw bad(file, n, `frames out of order: frame ${r.frame} comes after frame ${last}`);
    if (!Array.isArray(r.detections)) throw bad(file, n, `"detections" must be an array`);
    checkFrameDetections(r.detections.length, `${file} line ${n} (frame ${r.frame})`, file);
    last = r.frame;
    const detections = r.detections.map((d, k) => checkFileDetection(d, file, n, k));
    frames++;
    yield { frame: r.frame, ...(typeof r.pts === 'number' ? { pts: r.pts } : {}), detections, line: n };
  }
  if (frames === 0) throw new DeimError('ERR_INPUT_EMPTY', `${file} has no frames`, { input: file });
}

/** Refuses an output path that is one of the inputs (an output never replaces an input). */

/**
 * A text file written one line at a time with synchronous writes ('-': stdout), under a temporary
 * name beside the target that close() renames into place (an interrupted run keeps its whole lines).
 */
export class LineWriter {
  private readonly fd: number;
  private readonly file: AtomicFile | undefined;
  /** A write failed (a full disk): the file is never renamed onto the target, which stays as it was. */
  private failed = false;
  private closed = false;
  constructor(readonly target: string) {
    if (target === '-') {
      this.fd = -1;
      return;
    }
    try {
      this.file = new AtomicFile(target);
      this.fd = openSync(this.file.path, 'w');
    } catch (e) {
      this.file?.discard();
      throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${target}: ${errorMessage(e)}`, { input: target, cause: e });
    }
  }

  write(text: string): void {
    try {
      if (this.fd < 0) process.stdout.write(text);
      else writeSync(this.fd, text);
    } catch (e) {
      this.failed = true;
      throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write ${this.target}: ${errorMessage(e)}`, { input: this.target, cause: e });
    }
  }

  /** Renames the file onto its target, unless a write failed (then it is removed, the target untouched). */
  close(): void {
    if (this.fd < 0 || !this.file || this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    if (this.failed) this.file.discard();
    else this.file.commitSync();
  }

  /** For a run that failed: removes the temporary file; an earlier file under the target stays as it was. */
  discard(): void {
    this.failed = true;
    this.close();
  }
}

const r2 = (v: number) => Math.round(v * 100) / 100;

/**
 * MOTChallenge lines for one frame: `frame,id,x,y,w,h,score,-1,-1,-1` with the frame 1-based
 * (index + 1), the box as top-left and size with two decimals, as the reference demo writes them.
 */
export function motLines(frameIndex: number, tracks: readonly Track[]): string {
  let s = '';
  for (const t of tracks) {
    const [x1, y1, x2, y2] = t.box;
    s += `${frameIndex + 1},${t.trackId},${(x1).toFixed(2)},${y1.toFixed(2)},${(x2 - x1).toFixed(2)},${(y2 - y1).toFixed(2)},${t.score.toFixed(2)},-1,-1,-1\n`;
  }
  return s;
}

/** A track as written to JSON: rounded to 0.01 px, without the input index. */
export function trackJson(t: Track): Record<string, unknown> {
  return {
    trackId: t.trackId,
    ...(t.label !== undefined ? { label: t.label } : {}),
    classId: t.classId,
    ...(t.categoryId !== undefined ? { categoryId: t.categoryId } : {}),
    score: t.score,
    box: t.box.map(r2),
  };
}
