/**
 * The TensorRT backend: availability (with the reason when unavailable), engine building and cache,
 * and the Backend that runs engines.
 */
export { tensorrtAvailability, probeTensorRt, hasFastFp16 } from './availability.js';
export type { TensorRtProbe } from './availability.js';
export { createTensorRtBackend, defaultFrameBytes, TensorRtBackend } from './backend.js';
export type { TensorRtBackendOptions, TensorRtLease } from './backend.js';
export { FRAME_ITEM_FIELDS, FrameField, frameGeometry, frameValueTable, planFrames, writeFrames } from './frames.js';
export type { PlannedFrames } from './frames.js';
export { runImagesOnTensorRt } from './run-images.js';
export type { ImageRunOptions, ImageRunTiming } from './run-images.js';
export { buildEngine, engineCacheDir, removeEngine } from './build.js';
export type { BuildEngineOptions, BuildEngineResult } from './build.js';
export { checkEngine, engineCacheKey, enginePaths, readSidecar, writeSidecar, sidecarPath, sha256File, ENGINE_FORMAT } from './cache.js';
export type { BatchProfile, EngineCheck, EngineKeyParts, EngineSidecar, ValidationFigures } from './cache.js';
export { compareDetections, validateEngine, validationImages, VALIDATION_TOLERANCE } from './validate.js';
export { loadAddon } from './native.js';
export type { NativeAddon, NativeOpenOptions, NativeBuildInfo, NativeBuildProgress, NativeEngine, NativeTensorInfo, NativeCudaDevice } from './native.js';
