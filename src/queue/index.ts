/**
 * Queue mode on BullMQ: DetectionQueue (producer) and DetectionWorker (consumer). The package's
 * `deimv2/queue` entry, kept out of the main entry so that `import ... from 'deimv2'` loads neither
 * BullMQ nor ioredis, nor their declarations.
 */
export { DetectionQueue } from './producer.js';
export type { DetectionQueueOptions, AddJob, QueueResult } from './producer.js';
export { DetectionWorker } from './worker.js';
export type { DetectionWorkerOptions, WorkerCounts } from './worker.js';
export type { DetectionJobOptions, JobResult } from './jobs.js';
export type { QueueStats, WorkerInfo, RedisTarget, RedisConnectionOptions } from './types.js';
