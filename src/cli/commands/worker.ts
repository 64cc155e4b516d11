/** `deimv2 worker --redis URL --queue detect`: consume detection jobs until SIGTERM/SIGINT (then drain and exit 0). */
import type { Command } from 'commander';
import { DeimError } from '../../errors.js';
import { DEFAULT_MAX_BYTES } from '../../queue/jobs.js';
import { DetectionWorker } from '../../queue/worker.js';
import { addDetectorOptions, decimal, detectorOptionsFrom, type DetectorCliOptions } from '../options.js';

interface WorkerCliOptions extends DetectorCliOptions {
  redis: string;
  queue: string;
  concurrency?: string;
  allowDir?: string[];
  maxBytes: string;
  urlTimeout: string;
  lockDuration?: string;
  stalledInterval?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  addDetectorOptions(
    program
      .command('worker')
      .description('consume detection jobs from a Redis queue (BullMQ) until SIGTERM (--threshold etc.: defaults for jobs that set none)'),
  )
    .requiredOption('--redis <url>', 'redis://[:password@]host:6379[/db], or rediss:// for TLS (a private CA: NODE_EXTRA_CA_CERTS=ca.pem)')
    .option('--queue <name>', 'queue name', 'detect')
    .option('--concurrency <n>', 'jobs in flight (default: 4 x model runners x batch + 2)')
    .option('--allow-dir <dir...>', 'folders path jobs may read and annotated images may be written under (default: none)')
    .option('--max-bytes <n>', 'largest image in bytes (job bytes, files, downloads)', String(DEFAULT_MAX_BYTES))
    .option('--url-timeout <ms>', 'URL download timeout in milliseconds', '15000')
    .option('--lock-duration <ms>', 'job lock; a killed worker\'s jobs are taken over after it expires (default 30000)')
    .option('--stalled-interval <ms>', 'how often to look for jobs of killed workers (default 30000)')
    .option('-q, --quiet', 'log only errors')
    .action(async (options: WorkerCliOptions) => {
      process.exitCode = await workerCommand(options);
    });
}

function int(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (!Number.isInteger(n) || n < 1) throw new DeimError('ERR_INVALID_ARGUMENT', `--${name} must be a positive integer, got "${value}"`, { input: value });
  return n;
}

export async function workerCommand(options: WorkerCliOptions): Promise<number> {
  const log = (s: string) => process.stderr.write(s + '\n');
  const detectorOptions = detectorOptionsFrom(options);
  const concurrency = int(options.concurrency, 'concurrency');
  const lockDuration = int(options.lockDuration, 'lock-duration');
  const stalledInterval = int(options.stalledInterval, 'stalled-interval');
  // A signal during start-up stops right after it.
  let stopRequested: string | undefined;
  let onSignal: (signal: string) => void = (signal) => (stopRequested = signal);
  const handler = (signal: NodeJS.Signals) => onSignal(signal);
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  try {
    const worker = await DetectionWorker.start({
      redis: options.redis,
      queue: options.queue,
      detectorOptions,
      ...(concurrency !== undefined ? { concurrency } : {}),
      allowDirs: options.allowDir ?? [],
      maxBytes: int(options.maxBytes, 'max-bytes')!,
      urlTimeoutMs: int(options.urlTimeout, 'url-timeout')!,
      ...(lockDuration !== undefined ? { lockDuration } : {}),
      ...(stalledInterval !== undefined ? { stalledInterval } : {}),
      log: options.quiet ? (s) => (/failed|error|ECONN|refused/i.test(s) && !/will retry/.test(s) ? log(s) : undefined) : log,
    });
    const stopped = new Promise<string>((resolve) => {
      onSignal = resolve;
      if (stopRequested) resolve(stopRequested);
    });
    const signal = await stopped;
    log(`deimv2 worker: ${signal}: finishing the jobs in hand, taking no new ones`);
    onSignal = (again) => {
      // A second signal stops at once (say Redis is away and the drain cannot finish).
      log(`deimv2 worker: ${again} again: stopping now; the jobs in hand go to other workers after stall detection`);
      process.exit(1);
    };
    await worker.close();
    const c = worker.stats();
    log(`deimv2 worker: stopped: ${c.completed} job(s) completed, ${c.failed} failed, ${c.retried} attempt(s) to retry`);
    return 0;
  } finally {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  }
}
