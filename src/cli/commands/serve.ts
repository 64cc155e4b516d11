/** `deimv2 serve`: the live multi-camera service (src/serve) until SIGTERM/SIGINT (then finish in-flight frames and exit 0). */
import type { Command } from 'commander';
import { DeimError } from '../../errors.js';
import { printable } from '../../output/printable.js';
import { dieOf, onStopSignals, signalName } from '../../signals.js';
import { addDetectorOptions, decimal, detectorOptionsFrom, type DetectorCliOptions } from '../options.js';

interface ServeCliOptions extends DetectorCliOptions {
  config?: string;
  host: string;
  port: string;
  batchTimeoutMs: string;
  allowDir?: string[];
  apiKey?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  addDetectorOptions(
    program
      .command('serve')
      .description('run many live streams (RTSP cameras, ...) through one detector with cross-stream batching, tracking and counting; HTTP API, Prometheus metrics and a live page'),
  )
    .option('--config <file>', 'streams: JSON or YAML { streams: [{ id, source, track?, lines?, zones?, maxFps?, threshold?, classes? }] }')
    .option('--host <address>', 'address to listen on (anything but loopback needs --api-key)', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: a free one)', '8080')
    .option('--batch-timeout-ms <ms>', 'longest wait for a full --batch of frames across streams', '10')
    .option('--allow-dir <dir...>', 'folders local video files may be read from as streams (default: none)')
    .option('--api-key <key>', 'calls that change something need Authorization: Bearer <key> (default: $DEIMV2_API_KEY)')
    .option('-q, --quiet', 'log only errors and state changes')
    .action(async (options: ServeCliOptions) => {
      process.exitCode = await serveCommand(options);
    });
}

function int(value: string, name: string, min: number, max: number): number {
  const n = decimal(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new DeimError('ERR_INVALID_ARGUMENT', `--${name} must be an integer from ${min} to ${max}, got "${value}"`, { input: value });
  return n;
}

export async function serveCommand(options: ServeCliOptions): Promise<number> {
  const { batch, ...detector } = detectorOptionsFrom(options);
  const port = int(options.port, 'port', 0, 65535);
  const batchTimeoutMs = int(options.batchTimeoutMs, 'batch-timeout-ms', 0, 60_000);
  const log = (s: string) => process.stderr.write(printable(s) + '\n');
  // A signal during start-up stops right after it.
  let signals = 0;
  let service: import('../../serve/service.js').Service | undefined;
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const removeHandlers = onStopSignals((signal) => {
    signals++;
    if (signals === 1) {
      log(`deimv2 serve: ${signal}: stopping (finishing the frames in detection; ${signalName(signal)} again to quit now)`);
      stop();
      return;
    }
    log(`deimv2 serve: ${signal} again: quitting now`);
    service?.kill();
    removeHandlers();
    dieOf(signal);
  });
  try {
    const { startService } = await import('../../serve/start.js');
    service = await startService({
      detector,
      ...(batch !== undefined ? { batch } : {}),
      batchTimeoutMs,
      host: options.host,
      port,
      ...(options.config !== undefined ? { config: options.config } : {}),
      allowDirs: options.allowDir ?? [],
      ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
      log: options.quiet ? (s) => (/error|fail|stall|reconnect|running|ended|stopp/i.test(s) ? log(s) : undefined) : log,
    });
    log(`deimv2 serve: ready on ${service.url} (${service.streams.size} stream(s))`);
    await stopped;
    await service.close();
    log('deimv2 serve: stopped');
    return 0;
  } finally {
    removeHandlers();
  }
}
