/** `deimv2 queue stats --redis URL --queue detect`: job counts and each worker's throughput. */
import type { Command } from 'commander';
import { DetectionQueue } from '../../queue/producer.js';
import type { QueueStats, WorkerInfo } from '../../queue/types.js';

interface QueueCliOptions {
  redis: string;
  queue: string;
  json?: boolean;
}

export function register(program: Command): void {
  const queue = program.command('queue').description('inspect a detection queue');
  queue
    .command('stats')
    .description('waiting, active, completed and failed jobs, and jobs/s per worker')
    .requiredOption('--redis <url>', 'redis://[:password@]host:6379[/db], or rediss:// for TLS (a private CA: NODE_EXTRA_CA_CERTS=ca.pem)')
    .option('--queue <name>', 'queue name', 'detect')
    .option('--json', 'print the figures as JSON')
    .action(async (options: QueueCliOptions) => {
      const q = new DetectionQueue({ redis: options.redis, queue: options.queue });
      try {
        await q.ready();
        const stats = await q.stats();
        process.stdout.write(options.json ? JSON.stringify(stats, null, 2) + '\n' : formatStats(stats));
      } finally {
        await q.close();
      }
    });
}

export function formatStats(s: QueueStats): string {
  const lines = [
    `queue "${s.queue}": ${s.waiting} waiting, ${s.active} active, ${s.delayed} delayed (retry backoff), ${s.completed} completed, ${s.failed} failed`,
    `${s.workers.length} worker(s), ${s.jobsPerSecond.toFixed(1)} jobs/s in all (last 30 s)`,
  ];
  const row = (w: WorkerInfo, state: string) =>
    `  ${w.id.padEnd(32)} ${state.padEnd(5)} ${w.model}/${w.backend} x${w.concurrency}  ${w.jobsPerSecond.toFixed(1).padStart(6)} jobs/s  ${w.completed} completed, ${w.failed} failed, up ${Math.round((w.seenAt - w.startedAt) / 1000)} s`;
  for (const w of s.workers) lines.push(row(w, 'live'));
  for (const w of s.gone) lines.push(row(w, 'gone'));
  return lines.join('\n') + '\n';
}
