/** Queue mode on BullMQ: DetectionQueue (producer) and DetectionWorker (consumer). */
export { DetectionQueue } from './producer.js';
export type { DetectionQueueOptions, AddJob, QueueResult } from './producer.js';
export { DetectionWorker } from './worker.js';
export type { DetectionWorkerOptions, WorkerCounts } from './worker.js';
export type { DetectionJobOptions, JobResult } from './jobs.js';
export type { QueueStats, WorkerInfo } from './stats.js';
export type { RedisTarget, RedisConnectionOptions } from './connection.js';
