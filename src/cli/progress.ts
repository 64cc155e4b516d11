/**
 * A progress bar on stderr for long runs; silent when stderr is not a terminal or with --quiet.
 * stop() clears it for good (say, before a "stopping" line on Ctrl-C): nothing is drawn after.
 */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';

/** Loaded only when a bar is shown (start-up of short runs does not pay for it). */
const loadCliProgress = () => createRequire(import.meta.url)('cli-progress') as typeof CliProgress;

export interface Progress {
  tick(n?: number): void;
  stop(): void;
}

export function createProgress(total: number, options: { quiet?: boolean; label?: string } = {}): Progress {
  if (options.quiet || !process.stderr.isTTY || total < 2) return { tick() {}, stop() {} };
  const start = performance.now();
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${options.label ?? 'detect'} [{bar}] {value}/{total} | {fps} img/s | ETA {eta_formatted}`,
      barsize: 30,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { fps: '0.0' });
  let done = 0;
  let stopped = false;
  return {
    tick(n = 1) {
      done += n;
      if (!stopped) bar.update(done, { fps: (done / ((performance.now() - start) / 1000)).toFixed(1) });
    },
    // Clears the bar (clearOnComplete) and stops its redraw timer; later ticks draw nothing.
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
