/**
 * The CommonJS packages on the start-up path, loaded with require(). Node's ESM loader lexes every
 * CommonJS file it imports for named exports and reads the files through libuv's thread pool,
 * which costs more than the load itself; a worker thread doing that while the main thread loads
 * the model slows both (2 cores). Measured here, 3 runs each, CPU time of the load alone:
 * sharp 40-58 ms by require against 107-130 ms by import, onnxruntime-node 7-17 against 10-31 ms.
 */
import { createRequire } from 'node:module';
import type Sharp from 'sharp';
import type * as Ort from 'onnxruntime-node';
import type * as Commander from 'commander';

const require = createRequire(import.meta.url);

export const requireSharp = (): typeof Sharp => require('sharp') as typeof Sharp;
export const requireOrt = (): typeof Ort => require('onnxruntime-node') as typeof Ort;
export const requireCommander = (): typeof Commander => require('commander') as typeof Commander;
