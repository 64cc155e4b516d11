/**
 * The TensorRT backend: availability (with the reason when unavailable), the Backend that runs
 * engines, GPU frame plans, and its runner. Building, caching and validating engines: src/engine/.
 */
export { tensorrtAvailability, probeTensorRt, hasFastFp16 } from './availability.js';
export type { TensorRtProbe } from './availability.js';
export { defaultFrameBytes, openEngineFile, TensorRtBackend } from './backend.js';
export type { EngineOpenOptions, TensorRtLease } from './backend.js';
export { FRAME_ITEM_FIELDS, FrameField, frameGeometry, frameValueTable, planFrames, writeFrames } from './frames.js';
export type { PlannedFrames } from './frames.js';
export { runImagesOnTensorRt } from './run-images.js';
export type { ImageRunOptions, ImageRunTiming } from './run-images.js';
export { openEngineRunner, tensorRtRunner } from './runner.js';
export { loadAddon } from './native.js';
export type { NativeAddon, NativeOpenOptions, NativeBuildInfo, NativeBuildProgress, NativeEngine, NativeTensorInfo, NativeCudaDevice } from './native.js';
