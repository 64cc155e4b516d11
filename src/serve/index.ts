/** The live multi-camera service (`deimv2 serve`), also importable as `deimv2/serve`. */
export { startService } from './start.js';
export { Service, isLoopback } from './service.js';
export type { ServiceOptions } from './service.js';
export { checkConfig, checkStream, readConfigFile } from './config.js';
export type { StreamConfig, CheckedStream } from './config.js';
export type { StreamInfo, StreamState, StreamTiming } from './stream.js';
export { redactSource } from './redact.js';
