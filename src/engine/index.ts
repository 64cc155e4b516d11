/**
 * Engines, above the runners: building (prepare -> TensorRT), the cache keyed by everything that
 * makes an engine valid, validation of a new engine against the CPU runner, and opening one.
 */
export { buildEngine, engineCacheDir, removeEngine } from './build.js';
export type { BuildEngineOptions, BuildEngineResult } from './build.js';
export { checkEngine, engineCacheKey, enginePaths, readSidecar, writeSidecar, sidecarPath, sha256File, ENGINE_FORMAT } from './cache.js';
export type { BatchProfile, EngineCheck, EngineKeyParts, EngineSidecar, ValidationFigures } from './cache.js';
export { compareDetections, validateEngine, validationImages, VALIDATION_TOLERANCE } from './validate.js';
export { createTensorRtBackend, openTensorRtRunner } from './open.js';
export type { EngineSource, TensorRtBackendOptions } from './open.js';
