#!/usr/bin/env node
/**
 * The video pipeline's speed and memory, measured in one run on this machine (issue 4's targets):
 *  1. model only: one onnxruntime session using every core, batch 1, on a real preprocessed frame;
 *  2. sequential loop: decode -> resize -> infer -> draw -> encode, one frame at a time, each stage
 *     waiting for the previous one (how a straightforward loop does it), same session as (1);
 *  3. end to end: detectVideo on the detector's per-core pool, writing an annotated MP4, over the
 *     video looped to at least --frames frames, sampling this process's RSS as it goes.
 * Targets: (3) >= 1.0 x (1), (3) >= 2.2 x (2), RSS growth < 50 MB after warm-up.
 *
 *   npm run build && node bench/video-pipeline.js [--model atto] [--model-dir DIR] [--video FILE]
 *       [--frames 5000] [--model-runs 300] [--json out.json]
 *
 * Timings on a shared machine are noisy: rerun when it is quiet, and compare only figures from the
 * same run.
 */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Each module directly (not dist/index.js): this script needs only the video path's modules.
const { Detector } = await import(path.join(root, 'dist/detector.js'));
const { resolveModel } = await import(path.join(root, 'dist/models/resolve.js'));
const { VARIANTS } = await import(path.join(root, 'dist/models/variants.js'));
const { imageToTensor } = await import(path.join(root, 'dist/image/tensor.js'));
const { drawDetections } = await import(path.join(root, 'dist/annotate/draw.js'));
const { detectVideo } = await import(path.join(root, 'dist/video/pipeline.js'));
const { FrameDecoder } = await import(path.join(root, 'dist/video/decoder.js'));
const { FrameEncoder } = await import(path.join(root, 'dist/video/encoder.js'));
const { requireFfmpeg } = await import(path.join(root, 'dist/video/ffmpeg.js'));
const { toDetections } = await import(path.join(root, 'dist/postprocess/detections.js'));
const { COCO_CLASSES } = await import(path.join(root, 'dist/models/classes.js'));

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'atto' },
    'model-dir': { type: 'string', default: process.env.DEIMV2_MODEL_DIR ?? path.resolve(root, '../shared/models') },
    video: { type: 'string', default: path.resolve(root, '../shared/videos/car-detection.mp4') },
    frames: { type: 'string', default: '5000' },
    'model-runs': { type: 'string', default: '300' },
    json: { type: 'string' },
  },
});

const MB = 1024 * 1024;
const cores = os.availableParallelism();
const model = resolveModel(args.model, { modelDir: args['model-dir'] });
const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-video-bench-'));
const ffmpeg = requireFfmpeg();

/** One decoded frame of the video, as RGB, for the model-only run. */
async function firstFrame() {
  const decoder = await FrameDecoder.open(ffmpeg, args.video, { live: false });
  const frame = await decoder.next();
  decoder.stop();
  return { data: frame.data, width: decoder.info.width, height: decoder.info.height, channels: 3 };
}

async function createSession() {
  return ort.InferenceSession.create(model.path, { graphOptimizationLevel: 'all', intraOpNumThreads: cores, interOpNumThreads: 1, executionMode: 'sequential' });
}

function feeds(tensor, size, transform) {
  return {
    images: new ort.Tensor('float32', tensor, [1, 3, size, size]),
    orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([BigInt(transform.frameWidth), BigInt(transform.frameHeight)]), [1, 2]),
  };
}

async function modelOnly(session, size, frame, runs) {
  const tensor = new Float32Array(3 * size * size);
  const transform = imageToTensor(frame, size, 'stretch', 'none', tensor);
  const input = feeds(tensor, size, transform);
  for (let i = 0; i < 20; i++) await session.run(input);
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await session.run(input);
  return { frames: runs, seconds: (performance.now() - t0) / 1000 };
}

/** Every stage waits for the one before: the baseline the pipeline is measured against. */
async function sequentialLoop(session, size) {
  const decoder = await FrameDecoder.open(ffmpeg, args.video, { live: false });
  const { width, height, fpsText } = decoder.info;
  const encoder = new FrameEncoder(ffmpeg, path.join(tmp, 'sequential.mp4'), { width, height, fpsText, live: false });
  const tensor = new Float32Array(3 * size * size);
  const post = { threshold: 0.4, maxDetections: 300, classes: COCO_CLASSES };
  let frames = 0;
  let t0 = 0;
  const warmup = 10;
  for (let frame = await decoder.next(); frame; frame = await decoder.next()) {
    if (frames === warmup) t0 = performance.now();
    const image = { data: frame.data, width, height, channels: 3 };
    const transform = imageToTensor(image, size, 'stretch', 'none', tensor);
    const out = await session.run(feeds(tensor, size, transform));
    const raw = {
      batch: 1,
      perImage: out.scores.dims[1],
      labels: Int32Array.from(out.labels.data, Number),
      boxes: out.boxes.data,
      scores: out.scores.data,
    };
    drawDetections(image, toDetections(raw, 0, transform, post));
    await encoder.write(image.data);
    frames++;
  }
  const seconds = (performance.now() - t0) / 1000;
  await encoder.finish();
  return { frames: frames - warmup, seconds };
}

async function endToEnd(minFrames) {
  const detector = await Detector.create({ model: model.path, layout: 'pool' });
  try {
    // Warm the pool up outside the timing.
    const warm = detectVideo(detector, args.video, {});
    let n = 0;
    for await (const _ of warm) if (++n >= 20) break;

    const probe = detectVideo(detector, args.video, {});
    let perPass = 0;
    for await (const _ of probe) perPass++;
    const loop = Math.max(0, Math.ceil(minFrames / perPass) - 1);

    const run = detectVideo(detector, args.video, { output: path.join(tmp, 'pipeline.mp4'), loop });
    const rss = [];
    let baseline;
    const t0 = performance.now();
    let frames = 0;
    for await (const _ of run) {
      frames++;
      if (frames === 500) baseline = process.memoryUsage().rss;
      if (frames % 100 === 0) rss.push(process.memoryUsage().rss);
    }
    const seconds = (performance.now() - t0) / 1000;
    const end = process.memoryUsage().rss;
    return { frames, seconds, loop, perPass, rss: { baseline, end, peak: Math.max(...rss, end), growth: end - baseline }, description: detector.description };
  } finally {
    await detector.close();
  }
}

const session = await createSession();
const size = model.variant ? VARIANTS[model.variant].inputSize : 320;
const frame = await firstFrame();

const modelRun = await modelOnly(session, size, frame, Number(args['model-runs']));
const sequential = await sequentialLoop(session, size);
await session.release();
const pipeline = await endToEnd(Number(args.frames));
rmSync(tmp, { recursive: true, force: true });

const fps = (r) => r.frames / r.seconds;
const results = {
  date: new Date().toISOString(),
  host: os.hostname(),
  cpu: os.cpus()[0]?.model ?? 'unknown',
  cores,
  loadAverage: os.loadavg(),
  model: model.path,
  video: args.video,
  modelOnlyFps: fps(modelRun),
  sequentialFps: fps(sequential),
  endToEndFps: fps(pipeline),
  endToEndFrames: pipeline.frames,
  rssBaselineMB: pipeline.rss.baseline / MB,
  rssEndMB: pipeline.rss.end / MB,
  rssPeakMB: pipeline.rss.peak / MB,
  rssGrowthMB: pipeline.rss.growth / MB,
};
results.vsModelOnly = results.endToEndFps / results.modelOnlyFps;
results.vsSequential = results.endToEndFps / results.sequentialFps;

const pass = (ok) => (ok ? 'PASS' : 'FAIL');
const f1 = (x) => x.toFixed(1);
console.log(`
Video pipeline benchmark (${path.basename(args.model)}, ${path.basename(args.video)}, ${cores} cores, ${results.cpu})
  load average at the end: ${results.loadAverage.map((x) => x.toFixed(2)).join(' ')}  (figures are noisy when other work runs)
  model only, 1 session x ${cores} threads, batch 1   ${f1(results.modelOnlyFps).padStart(7)} FPS  (${modelRun.frames} runs)
  sequential decode>resize>infer>draw>encode     ${f1(results.sequentialFps).padStart(7)} FPS  (${sequential.frames} frames)
  end to end pipeline (${pipeline.description})
                                                 ${f1(results.endToEndFps).padStart(7)} FPS  (${pipeline.frames} frames, ${pipeline.loop + 1} passes)
  end to end / model only                        ${results.vsModelOnly.toFixed(2).padStart(7)} x   target >= 1.0   ${pass(results.vsModelOnly >= 1.0)}
  end to end / sequential                        ${results.vsSequential.toFixed(2).padStart(7)} x   target >= 2.2   ${pass(results.vsSequential >= 2.2)}
  RSS after 500 frames ${f1(results.rssBaselineMB)} MB, end ${f1(results.rssEndMB)} MB, peak ${f1(results.rssPeakMB)} MB
  RSS growth                                     ${f1(results.rssGrowthMB).padStart(7)} MB  target < 50     ${pass(results.rssGrowthMB < 50)}
`);
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
