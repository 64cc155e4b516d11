/**
 * `deimv2 detect <video>`: runs detectVideo with an annotated MP4 (--out), a JSONL file (--json),
 * a progress bar on a terminal, a summary line, and Ctrl-C handling: the first Ctrl-C stops
 * reading the source and finishes the output file cleanly; a second one exits at once (status
 * 130): the JSONL keeps its whole lines and ffmpeg finishes the MP4, which a detached shell then
 * moves into place. The progress bar is cleared before the "stopping" line and never redrawn.
 */
import type cliProgress from 'cli-progress';
import { createRequire } from 'node:module';
import path from 'node:path';
import { handOverEncoders } from './encoder.js';
import { LineWriter, motLines } from '../track/io.js';
import { formatTrackSummary, type TrackSummary } from '../track/session.js';
import { JsonlWriter } from './jsonl.js';
import { removeTemporaryFiles } from '../output/atomic.js';
import { planOutputs } from '../output/plan.js';
import { printable } from '../output/printable.js';
import { detectVideo, type FrameDetector, type VideoOptions, type VideoStats } from './pipeline.js';
import type { VideoInfo } from './probe.js';
import { dieOf, onStopSignals, signalName, type StopSignal } from '../signals.js';

export interface VideoRunOptions {
  /** Annotated MP4 to write. */
  out?: string;
  /** JSONL file, one line per frame ('-' for stdout). */
  json?: string;
  /** With tracking (video.track): tracks in MOTChallenge format. */
  mot?: string;
  /** No progress bar and no summary line. */
  quiet?: boolean;
  /** Progress bar (default: when stderr is a terminal). */
  progress?: boolean;
  /** Stop from outside; by default a SIGINT or SIGTERM stops the run. */
  signal?: AbortSignal;
  /** Install the SIGINT/SIGTERM handlers (default true): the first signal finishes the output, the second quits. */
  handleSigint?: boolean;
  /** Passed to detectVideo. */
  video?: Omit<VideoOptions, 'output' | 'signal' | 'onStart'>;
}

export interface VideoRunSummary extends VideoStats {
  source: string;
  output: string | undefined;
  json: string | undefined;
  /** Processed frames per second, wall clock. */
  fps: number;
  /** With tracking: tracks, line counts and zone dwell (also the last line of the JSONL). */
  tracking?: TrackSummary;
  /** The stop signal that ended the run early, if one did (the CLI exits 130 or 143 for it). */
  stopSignal?: StopSignal;
}

/**
 * Runs detection over a video for the CLI and returns the summary. Throws DeimError for bad input
 * (the CLI prints it as `deimv2: <message>`); a truncated file is reported in the summary line.
 *
 * @example
 * const summary = await runVideoDetect(detector, 'clip.mp4', { out: 'annotated.mp4', json: 'clip.jsonl' });
 */
export async function runVideoDetect(detector: FrameDetector, input: string, options: VideoRunOptions = {}): Promise<VideoRunSummary> {
  // Checked before the run (the JSONL also opened): no output may replace the source or the other output.
  planOutputs({
    inputs: [input],
    outputs: [...(options.out ? [{ path: options.out, kind: 'video', flag: '--out' }] : []), ...(options.json ? [{ path: options.json, kind: 'jsonl', flag: '--json' }] : []),
      ...(options.mot ? [{ path: options.mot, kind: 'mot', flag: '--mot' }] : []),
    ],
  });
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let interrupts = 0;
  let firstSignal: StopSignal | undefined;
  let bar: cliProgress.SingleBar | undefined;
  const clearBar = () => {
    bar?.stop(); // clearOnComplete: the line is cleared, and nothing is drawn after
    bar = undefined;
  };
  const jsonl = options.json ? new JsonlWriter(options.json) : undefined;
  const mot = options.mot ? new LineWriter(options.mot) : undefined;
  // Ctrl-C or SIGTERM: the first finishes the output, the second quits now.
  const onSignal = (signal: StopSignal) => {
    interrupts++;
    firstSignal ??= signal;
    clearBar();
    if (interrupts === 1) {
      if (!options.quiet) process.stderr.write(`deimv2: ${signal === 'SIGTERM' ? 'SIGTERM: ' : ''}stopping (finishing the output; ${signalName(signal)} again to quit now)\n`);
      controller.abort();
    } else {
      // Quit now: the JSONL keeps its whole lines, ffmpeg finishes the MP4 after we are gone.
      removeSignalHandlers();
      try {
        jsonl?.close();
        mot?.close();
      } finally {
        handOverEncoders();
        removeTemporaryFiles();
        dieOf(signal);
      }
    }
  };
  const handleSigint = options.handleSigint ?? true;
  const removeSignalHandlers = handleSigint ? onStopSignals(onSignal) : () => {};

  const showProgress = !options.quiet && (options.progress ?? process.stderr.isTTY === true);
  const started = performance.now();
  const onStart = (info: VideoInfo) => {
    if (!showProgress || interrupts > 0) return;
    const progress = createRequire(import.meta.url)('cli-progress') as typeof cliProgress;
    bar = new progress.SingleBar(
      {
        stream: process.stderr,
        format: info.frames ? 'video [{bar}] {value}/{total} frames | {fps} FPS | ETA {eta_formatted}' : 'video {value} frames | {fps} FPS | {dropped} dropped',
        barsize: 30,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 100,
      },
      progress.Presets.shades_classic,
    );
    bar.start(info.frames ?? 0, 0, { fps: '0.0', dropped: 0 });
  };

  const run = detectVideo(detector, input, { ...options.video, ...(options.out ? { output: options.out } : {}), signal: controller.signal, onStart });
  try {
    for await (const result of run) {
      try {
        jsonl?.write(result);
        if (mot && result.tracks) mot.write(motLines(result.frame, result.tracks));
      } catch (e) {
        run.discardOutput(); // a failed run writes no MP4 either (the loop's exit would finish it)
        throw e;
      }
      bar?.update(run.stats.processed, { fps: (run.stats.processed / ((performance.now() - started) / 1000)).toFixed(1), dropped: run.stats.dropped });
    }
  } catch (e) {
    // A failed run keeps no output (the MP4's temporary file is removed by the pipeline, above):
    // earlier files under the targets stay exactly as they were.
    jsonl?.discard();
    mot?.discard();
    throw e;
  } finally {
    clearBar();
    // The last line says what the frames are: a truncated or damaged input is marked there too,
    // so the file never looks like the whole video's results.
    const warnings = inputWarnings(run.stats);
    const incomplete = run.stats.decodeError !== undefined || run.stats.missingFrames > 0;
    const facts = warnings.length ? { ...(incomplete ? { incomplete: true, framesRead: run.stats.processed, ...(run.stats.info?.frames !== undefined ? { framesExpected: run.stats.info.frames } : {}) } : {}), warnings } : {};
    if (run.tracking || warnings.length) jsonl?.writeObject({ summary: { ...(run.tracking ? run.tracking.summary() : {}), ...facts } });
    jsonl?.close();
    mot?.close();
    removeSignalHandlers();
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
  const summary: VideoRunSummary = {
    ...run.stats,
    source: input,
    output: options.out,
    json: options.json,
    fps: run.stats.processed / Math.max(run.stats.elapsedMs / 1000, 1e-9),
    ...(run.tracking ? { tracking: run.tracking.summary() } : {}),
    ...(firstSignal ? { stopSignal: firstSignal } : {}),
  };
  if (!options.quiet) process.stderr.write(printable(summaryLine(summary)) + '\n');
  if (!options.quiet && summary.tracking) process.stderr.write(formatTrackSummary(summary.tracking) + '\n');
  return summary;
}

/** "clip.mp4: 377 frames in 4.8 s (78.5 FPS), 0 dropped -> annotated.mp4, clip.jsonl" (+ truncation or stop notes). */
export function summaryLine(s: VideoRunSummary): string {
  const parts = [`${path.basename(s.source) || s.source}: ${s.processed} frames in ${(s.elapsedMs / 1000).toFixed(1)} s (${s.fps.toFixed(1)} FPS)`];
  if (s.dropped > 0 || s.info?.frames === undefined) parts.push(`${s.dropped} dropped`);
  let line = parts.join(', ');
  const outputs = [s.output, s.json && s.json !== '-' ? s.json : undefined].filter(Boolean);
  if (outputs.length) line += ` -> ${outputs.join(', ')}`;
  if (s.stopped) line += ' (stopped)';
  return line + inputWarnings(s).map((w) => `; ${w}`).join('');
}

/**
 * What was wrong with the input, said plainly: a truncated or damaged file (how many frames were
 * read of how many), or a frame size that changed mid-stream (what the boxes are relative to).
 */
export function inputWarnings(s: Pick<VideoStats, 'decodeError' | 'missingFrames' | 'processed' | 'info' | 'sizeChanged' | 'stopped'>): string[] {
  const warnings: string[] = [];
  // Frames lost in a damaged stretch leave no gap in `frame` (frames are numbered as read): `pts`,
  // the source's own time, still places each one.
  const numbering = 'frames are numbered as read, so after a damaged stretch use pts for their place in the source';
  if (s.decodeError && s.missingFrames > 0) {
    warnings.push(`INCOMPLETE: the input is truncated or damaged: ${s.processed} of its ${s.info?.frames} frames were read (${s.decodeError}); ${numbering}`);
  } else if (s.decodeError) {
    warnings.push(`the input is damaged, frames may be missing or wrong (${s.decodeError}); ${numbering}`);
  }
  if (s.sizeChanged) {
    const { frame, from, to } = s.sizeChanged;
    warnings.push(`the frame size changed at frame ${frame} from ${from} to ${to}: later frames were scaled to ${from}, and their boxes are in ${from} pixels`);
  }
  return warnings;
}
