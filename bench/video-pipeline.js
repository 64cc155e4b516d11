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
 *       [--frames 5000] [--model-runs 300] [--rounds 3] [--json out.json]
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
    rounds: { type: 'string', default: '3' },
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

/** One timed end-to-end pass over the looped video; RSS is sampled into `memory` as frames go by. */
async function endToEndRound(detector, loop, memory) {
  const before = detector.stats();
  const cpu0 = process.cpuUsage();
  const run = detectVideo(detector, args.video, { output: path.join(tmp, 'pipeline.mp4'), loop });
  const t0 = performance.now();
  let frames = 0;
  for await (const _ of run) {
    frames++;
    memory.frames++;
    if (memory.frames === 500) memory.baseline = process.memoryUsage().rss;
    if (memory.frames % 100 === 0) memory.peak = Math.max(memory.peak, process.memoryUsage().rss);
  }
  const seconds = (performance.now() - t0) / 1000;
  // Where a frame's core-milliseconds went: the pool's model runs and resizes, and this process in
  // all (main thread + workers; the two ffmpeg processes are not in it).
  const after = detector.stats();
  const cpu = process.cpuUsage(cpu0);
  const perFrame = {
    inferMs: (after.inferMs - before.inferMs) / frames,
    preprocessMs: (after.preprocessMs - before.preprocessMs) / frames,
    processCpuMs: (cpu.user + cpu.system) / 1000 / frames,
  };
  return { frames, seconds, perFrame };
}

// Rounds: each measures all three, one after the other, so that load from elsewhere on the
// machine hits them alike; the best round of each is reported (and the median, for the spread).
const rounds = Number(args.rounds);
const session = await createSession();
const size = model.variant ? VARIANTS[model.variant].inputSize : 320;
const frame = await firstFrame();
const detector = await Detector.create({ model: model.path, layout: 'pool' });
let perPass = 0;
for await (const _ of detectVideo(detector, args.video, {})) perPass++; // warm-up, and frames per pass
const loop = Math.max(0, Math.ceil(Number(args.frames) / rounds / perPass) - 1);
const memory = { frames: 0, baseline: 0, peak: 0 };
const measured = { model: [], sequential: [], pipeline: [] };
for (let r = 0; r < rounds; r++) {
  measured.model.push(await modelOnly(session, size, frame, Math.ceil(Number(args['model-runs']) / rounds)));
  measured.sequential.push(await sequentialLoop(session, size));
  measured.pipeline.push(await endToEndRound(detector, loop, memory));
  process.stderr.write(`round ${r + 1}/${rounds}: model ${fps(measured.model[r]).toFixed(1)}, sequential ${fps(measured.sequential[r]).toFixed(1)}, end to end ${fps(measured.pipeline[r]).toFixed(1)} FPS\n`);
}
memory.end = process.memoryUsage().rss;
memory.peak = Math.max(memory.peak, memory.end);
const description = detector.description;
await detector.close();
await session.release();
rmSync(tmp, { recursive: true, force: true });

function fps(r) {
  return r.frames / r.seconds;
}
const best = (list) => list.reduce((a, b) => (fps(b) > fps(a) ? b : a));
const median = (list) => [...list].map(fps).sort((a, b) => a - b)[Math.floor(list.length / 2)];
const modelRun = best(measured.model);
const sequential = best(measured.sequential);
const bestPipeline = best(measured.pipeline);
const pipeline = {
  ...bestPipeline,
  description,
  loop,
  rounds,
  totalFrames: memory.frames,
  rss: { baseline: memory.baseline, end: memory.end, peak: memory.peak, growth: memory.end - memory.baseline },
};
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
  endToEndFrames: pipeline.totalFrames,
  rounds,
  medians: { modelOnlyFps: median(measured.model), sequentialFps: median(measured.sequential), endToEndFps: median(measured.pipeline) },
  poolInferMsPerFrame: pipeline.perFrame.inferMs,
  poolPreprocessMsPerFrame: pipeline.perFrame.preprocessMs,
  nodeCpuMsPerFrame: pipeline.perFrame.processCpuMs,
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
  best of ${rounds} rounds (median in brackets); each round runs all three one after the other
  model only, 1 session x ${cores} threads, batch 1   ${f1(results.modelOnlyFps).padStart(7)} FPS  (${f1(results.medians.modelOnlyFps)}; ${modelRun.frames} runs a round)
  sequential decode>resize>infer>draw>encode     ${f1(results.sequentialFps).padStart(7)} FPS  (${f1(results.medians.sequentialFps)}; ${sequential.frames} frames a round)
  end to end pipeline (${pipeline.description})
                                                 ${f1(results.endToEndFps).padStart(7)} FPS  (${f1(results.medians.endToEndFps)}; ${pipeline.frames} frames a round, ${pipeline.totalFrames} in all)
    per frame: pool inference ${f1(pipeline.perFrame.inferMs)} ms, pool resize ${f1(pipeline.perFrame.preprocessMs)} ms, this process's CPU ${f1(pipeline.perFrame.processCpuMs)} ms (ffmpeg not included)
  end to end / model only                        ${results.vsModelOnly.toFixed(2).padStart(7)} x   target >= 1.0   ${pass(results.vsModelOnly >= 1.0)}
  end to end / sequential                        ${results.vsSequential.toFixed(2).padStart(7)} x   target >= 2.2   ${pass(results.vsSequential >= 2.2)}
  RSS after 500 frames ${f1(results.rssBaselineMB)} MB, after ${pipeline.totalFrames} frames ${f1(results.rssEndMB)} MB, peak ${f1(results.rssPeakMB)} MB
  RSS growth                                     ${f1(results.rssGrowthMB).padStart(7)} MB  target < 50     ${pass(results.rssGrowthMB < 50)}
`);
if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 2) + '\n');
