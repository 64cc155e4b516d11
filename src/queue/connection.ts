/**
 * Redis connections for the queue: `redis://[user:password@]host[:port][/db]` or `rediss://...`
 * (TLS). Every client retries forever with a capped backoff and queues commands while Redis is
 * away, so a Redis restart is survived by reconnecting.
 */
import { Redis } from 'ioredis';
import { DeimError } from '../errors.js';
import type { RedisConnectionOptions, RedisTarget } from './types.js';

export type { RedisConnectionOptions, RedisTarget } from './types.js';

/** The URL with its password replaced by ***, for messages and logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

export function checkRedisTarget(target: RedisTarget): RedisConnectionOptions {
  const options = typeof target === 'string' ? { url: target } : target;
  if (!options || typeof options.url !== 'string' || options.url === '') {
    throw new DeimError('ERR_INVALID_ARGUMENT', 'redis must be a redis:// or rediss:// URL');
  }
  let u: URL;
  try {
    u = new URL(options.url);
  } catch {
    throw new DeimError('ERR_INVALID_ARGUMENT', `redis URL ${redactRedisUrl(options.url)} is not a URL (expected redis://host:6379 or rediss://host:6380)`, { input: redactRedisUrl(options.url) });
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `redis URL must start with redis:// or rediss:// (TLS), got ${u.protocol}//`, { input: redactRedisUrl(options.url) });
  }
  const db = u.pathname.replace(/^\//, '');
  if (db !== '' && !/^\d+$/.test(db)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `redis URL ${redactRedisUrl(options.url)}: the path must be a database number (/0, /1, ...)`, { input: redactRedisUrl(options.url) });
  }
  return options;
}

/** A new client; BullMQ needs maxRetriesPerRequest null on the connections it blocks on. */
export function createRedis(target: RedisConnectionOptions, name: string): Redis {
  const client = new Redis(target.url, {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectionName: name,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 10), 2000),
    ...(target.tls !== undefined ? { tls: target.tls } : {}),
  });
  // Connection errors are retried by ioredis; callers that care listen themselves.
  client.on('error', () => {});
  return client;
}

/** Waits until the client is connected, or fails with ERR_QUEUE after timeoutMs. */
export async function waitForRedis(client: Redis, url: string, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return;
  let lastError = '';
  const onError = (e: Error) => (lastError = e.message);
  client.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new DeimError('ERR_QUEUE', `cannot reach Redis at ${redactRedisUrl(url)} within ${timeoutMs / 1000} s${lastError ? `: ${lastError}` : ''}`, { input: redactRedisUrl(url) })),
        timeoutMs,
      );
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  } finally {
    client.off('error', onError);
  }
}
