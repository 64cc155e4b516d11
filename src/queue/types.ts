/**
 * The queue's public types, declared here without ioredis or BullMQ: `deimv2/queue`'s declarations
 * must compile for a strict consumer without skipLibCheck, and ioredis's own declarations do not
 * (they import the untyped 'redis-errors'). Files that hold a Redis client (connection.ts,
 * stats.ts) keep those types to themselves; producer.ts and worker.ts take their public types
 * from here.
 */
import type { ConnectionOptions } from 'node:tls';

export interface RedisConnectionOptions {
  /** A redis:// or rediss:// URL, with password and database number when needed. */
  url: string;
  /** Extra TLS options for rediss:// (a private CA, client certificates): Node's tls.connect options, as ioredis takes them. */
  tls?: ConnectionOptions | undefined;
}

export type RedisTarget = string | RedisConnectionOptions;

export interface WorkerInfo {
  id: string;
  host: string;
  pid: number;
  model: string;
  backend: string;
  concurrency: number;
  startedAt: number;
  seenAt: number;
  completed: number;
  failed: number;
  /** Jobs finished per second over the last 30 s. */
  jobsPerSecond: number;
}

export interface QueueStats {
  queue: string;
  waiting: number;
  active: number;
  delayed: number;
  completed: number;
  failed: number;
  /** Workers heard from in the last 15 s. */
  workers: WorkerInfo[];
  /** Workers that stopped sending heartbeats (closed or killed) in the last 10 minutes. */
  gone: WorkerInfo[];
  /** Sum of the live workers' rates. */
  jobsPerSecond: number;
}
