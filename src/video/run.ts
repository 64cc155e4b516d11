/**
 * `deimv2 detect <video>`: runs detectVideo with an annotated MP4 (--out), a JSONL file (--json),
 * a progress bar on a terminal, a summary line, and Ctrl-C handling: the first Ctrl-C stops
 * reading the source and finishes the output file cleanly; a second one exits at once (the
 * encoder still closes its file, since its input pipe closes with this process).
 */
import type cliProgress from 'cli-progress';
import { createRequire } from 'node:module';
import path from 'node:path';
import { JsonlWriter } from './jsonl.js';
import { detectVideo, type FrameDetector, type VideoOptions, type VideoStats } from './pipeline.js';
import type { VideoInfo } from './probe.js';

export interface VideoRunOptions {
  /** Annotated MP4 to write. */
  out?: string;
  /** JSONL file, one line per frame ('-' for stdout). */
  json?: string;
  /** No progress bar and no summary line. */
  quiet?: boolean;
  /** Progress bar (default: when stderr is a terminal). */
  progress?: boolean;
  /** Stop from outside; by default a SIGINT handler stops the run. */
  signal?: AbortSignal;
  /** Install the SIGINT handler (default true). */
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
}

/**
 * Runs detection over a video for the CLI and returns the summary. Throws DeimError for bad input
 * (the CLI prints it as `deimv2: <message>`); a truncated file is reported in the summary line.
 *
 * @example
 * const summary = await runVideoDetect(detector, 'clip.mp4', { out: 'annotated.mp4', json: 'clip.jsonl' });
 */
export async function runVideoDetect(detector: FrameDetector, input: string, options: VideoRunOptions = {}): Promise<VideoRunSummary> {
  const controller = new AbortController();
  const onOuterAbort = () => controller.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      if (!options.quiet) process.stderr.write('\ndeimv2: stopping (finishing the output; Ctrl-C again to quit now)\n');
      controller.abort();
    } else {
      process.off('SIGINT', onSigint);
      process.kill(process.pid, 'SIGINT');
    }
  };
  const handleSigint = options.handleSigint ?? true;
  if (handleSigint) process.on('SIGINT', onSigint);

  const jsonl = options.json ? new JsonlWriter(options.json) : undefined;
  const showProgress = !options.quiet && (options.progress ?? process.stderr.isTTY === true);
  let bar: cliProgress.SingleBar | undefined;
  const started = performance.now();
  const onStart = (info: VideoInfo) => {
    if (!showProgress) return;
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
      jsonl?.write(result);
      bar?.update(run.stats.processed, { fps: (run.stats.processed / ((performance.now() - started) / 1000)).toFixed(1), dropped: run.stats.dropped });
    }
  } finally {
    bar?.stop();
    jsonl?.close();
    if (handleSigint) process.off('SIGINT', onSigint);
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
  const summary: VideoRunSummary = {
    ...run.stats,
    source: input,
    output: options.out,
    json: options.json,
    fps: run.stats.processed / Math.max(run.stats.elapsedMs / 1000, 1e-9),
  };
  if (!options.quiet) process.stderr.write(summaryLine(summary) + '\n');
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
  if (s.decodeError) line += `; input ended early${s.missingFrames ? ` (${s.missingFrames} of ${s.info?.frames} frames did not decode)` : ''}: ${s.decodeError}`;
  return line;
}
