/**
 * Records a simulated TensorRT engine (binding/sim/) for every frame of a video, so that the
 * simulated runtime can replay the CPU backend's outputs for exactly those frames (bench/serve.js's
 * batch-fill part). Run with DEIMV2_GPU_RUNTIME=simulated:
 *
 *   node bench/lib/record-clip.js MODEL CLIP OUT.engine MAX_BATCH
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const [model, clip, out, maxBatch] = process.argv.slice(2);
if (process.env.DEIMV2_GPU_RUNTIME !== 'simulated' || !model || !clip || !out || !maxBatch) {
  console.error('usage: DEIMV2_GPU_RUNTIME=simulated node bench/lib/record-clip.js MODEL CLIP OUT.engine MAX_BATCH');
  process.exit(2);
}
const { Detector } = await import(path.join(root, 'dist/index.js'));
const { recordEngine } = await import(path.join(root, 'dist/engine/record.js'));

const cpu = await Detector.create({ model, backend: 'cpu' });
const frames = [];
try {
  for await (const f of cpu.detectVideo(clip, { returnImage: true })) {
    frames.push({ data: new Uint8Array(f.image.data), width: f.image.width, height: f.image.height, channels: 3 });
  }
} finally {
  await cpu.close();
}
const r = await recordEngine({ model, inputs: frames, out, maxBatch: Number(maxBatch), includeValidationImage: false });
console.log(`recorded ${r.recorded} frames of ${path.basename(clip)} into ${out}`);
