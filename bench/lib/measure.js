/**
 * The three measurements of one benchmark row: model only (the graph alone, no decode/resize),
 * end to end on images (files -> detections, through the Detector), end to end on a video
 * (decode -> detect -> draw -> encode, through detectVideo). Warm-up runs are never timed.
 */
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { summarize } from './stats.js';

/**
 * Model only at `batch`: CPU through one onnxruntime session on every core (what a user of
 * onnxruntime-node gets), TensorRT through the package's backend. Input: a real image, resized.
 * @returns {Promise<{ fps: number, latency: ReturnType<typeof summarize> }>}
 */
export async function measureModelOnly(dist, { modelPath, variant, backend, precision, batch, size, normalization, warmup, runs, image }) {
  const floats = 3 * size * size;
  const images = new Float32Array(batch * floats);
  const sizes = new Int32Array(2 * batch);
  for (let i = 0; i < batch; i++) {
    const t = dist.imageToTensor(image, size, 'stretch', normalization, images, i * floats);
    sizes[2 * i] = t.frameWidth;
    sizes[2 * i + 1] = t.frameHeight;
  }
  let run;
  let close;
  if (backend === 'cpu') {
    const session = await ort.InferenceSession.create(modelPath, {
      graphOptimizationLevel: 'all', intraOpNumThreads: os.availableParallelism(), interOpNumThreads: 1, executionMode: 'sequential',
    });
    const feeds = {
      images: new ort.Tensor('float32', images, [batch, 3, size, size]),
      orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from(sizes, (v) => BigInt(v)), [batch, 2]),
    };
    run = () => session.run(feeds);
    close = () => session.release();
  } else {
    const trt = await dist.createTensorRtBackend({ modelPath, precision, maxBatch: batch });
    run = () => trt.run({ images, sizes, batch });
    close = () => trt.close();
  }
  try {
    for (let i = 0; i < warmup; i++) await run();
    const samples = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await run();
      samples.push(performance.now() - t0);
    }
    const latency = summarize(samples);
    return { fps: (batch * 1000) / latency.meanMs, latency };
  } finally {
    await close();
  }
}

/**
 * End to end on image files: decode, resize, infer and postprocess through detectBatch.
 * One untimed pass, then `passes` timed passes over all the files.
 */
export async function measureImages(detector, files, passes) {
  await detector.detectBatch(files);
  const samples = [];
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    const results = await detector.detectBatch(files);
    samples.push(performance.now() - t0);
    const failed = results.filter((r) => 'error' in r);
    if (failed.length) throw new Error(`${failed.length} images failed: ${failed[0].error.message}`);
  }
  const perPass = summarize(samples);
  return { fps: (files.length * 1000) / perPass.meanMs, passes: perPass.runs, spread: perPass.spread, images: files.length };
}

/**
 * End to end on a video: decode -> detect -> draw -> encode (annotated MP4 to a temp folder),
 * `maxFrames` frames at most; the first `warmupFrames` are not timed.
 */
export async function measureVideo(dist, detector, video, { tmpDir, maxFrames, warmupFrames = 10 }) {
  const controller = new AbortController();
  const run = dist.detectVideo(detector, video, { output: path.join(tmpDir, 'bench-video.mp4'), signal: controller.signal });
  let frames = 0;
  let t0 = 0;
  for await (const _ of run) {
    frames++;
    if (frames === warmupFrames) t0 = performance.now();
    if (frames >= maxFrames) controller.abort();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { fps: (frames - warmupFrames) / seconds, frames: frames - warmupFrames };
}
