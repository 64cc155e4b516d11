/** Video and stream detection: the public surface of src/video (re-exported by src/index.ts). */
export { detectVideo, VideoDetection } from './pipeline.js';
export type { FrameDetector, VideoFrameResult, VideoOptions, VideoStats } from './pipeline.js';
export { runVideoDetect, summaryLine } from './run.js';
export type { VideoRunOptions, VideoRunSummary } from './run.js';
export { ffmpegInfo, findFfmpeg, requireFfmpeg } from './ffmpeg.js';
export type { FfmpegInfo, FfmpegLocation, FfmpegSource } from './ffmpeg.js';
export { isVideoInput, isLiveSource, isImageSequence } from './source.js';
export type { VideoInfo } from './probe.js';
