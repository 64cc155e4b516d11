#!/usr/bin/env node
/**
 * Verifies `deimv2 prepare` on the 50 COCO images of ../shared/coco with onnxruntime on the CPU:
 *  - the GridSample rewrite against the original (max box / score deltas, identical detections);
 *  - FP16 emulation, mixed plan vs all-FP16 (detection agreement, and COCO AP when src/eval is built);
 *  - the real mixed FP16 graph run by onnxruntime (its CPU kernels upcast where they lack float16).
 *
 *   npm run build && node scripts/prepare-verify.js [atto|femto ...] [--images N]
 *
 * Needs DEIMV2_MODEL_DIR (or ./models) for the variant files; COCO from ../shared/coco.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(ROOT, 'dist', p));
const { prepareModel } = await dist('prepare/index.js');
const { resolveModel } = await dist('models/resolve.js');
const { VARIANTS } = await dist('models/variants.js');
const { compareSessions, createSession, loadImageInputs, runImage, summarise } = await dist('prepare/measure.js');

const args = process.argv.slice(2);
const imagesFlag = args.indexOf('--images');
const imageCount = imagesFlag >= 0 ? Number(args.splice(imagesFlag, 2)[1]) : 50;
const variants = args.length > 0 ? args : ['atto', 'femto'];
const COCO = path.resolve(ROOT, '../shared/coco');
const files = readdirSync(path.join(COCO, 'val2017')).filter((f) => f.endsWith('.jpg')).sort().slice(0, imageCount).map((f) => path.join(COCO, 'val2017', f));

/** PIL-faithful preprocessing (the official one) when src/image is built, else the simple sharp path. */
async function loadInputs(size) {
  if (existsSync(path.join(ROOT, 'dist/image/tensor.js')) && existsSync(path.join(ROOT, 'dist/image/decode.js'))) {
    const { imageToTensor } = await dist('image/tensor.js');
    const { decodeInput } = await dist('image/decode.js');
    const out = [];
    for (const file of files) {
      const { image } = await decodeInput(file);
      const chw = new Float32Array(3 * size * size);
      imageToTensor(image, size, 'stretch', 'none', chw, 0);
      out.push({ file, width: image.width, height: image.height, chw });
    }
    return { inputs: out, preprocessing: 'PIL-faithful (src/image/tensor.ts)' };
  }
  return { inputs: await loadImageInputs(files, size), preprocessing: 'sharp linear stretch' };
}

/** COCO AP of a session over the images, when the evaluation module is built. */
async function cocoAp(session, inputs, size) {
  if (!existsSync(path.join(ROOT, 'dist/eval/cocoeval.js'))) return undefined;
  const { readGroundTruth, parseResults } = await dist('eval/coco-dataset.js');
  const { evaluateCoco } = await dist('eval/cocoeval.js');
  const { COCO_CATEGORY_IDS } = await dist('models/classes.js');
  const gt = await readGroundTruth(path.join(COCO, 'annotations/instances_val2017.json'));
  const results = [];
  for (const img of inputs) {
    const o = await runImage(session, img, size);
    const imageId = Number(path.basename(img.file, '.jpg'));
    for (let i = 0; i < o.scores.length; i++) {
      const [x1, y1, x2, y2] = o.boxes.subarray(4 * i, 4 * i + 4);
      if (!Number.isFinite(o.scores[i]) || ![x1, y1, x2, y2].every(Number.isFinite)) continue;
      results.push({ image_id: imageId, category_id: COCO_CATEGORY_IDS[Number(o.labels[i])], bbox: [x1, y1, x2 - x1, y2 - y1], score: o.scores[i] });
    }
  }
  return evaluateCoco(gt, parseResults(results, gt, 'prepare-verify'), undefined).stats[0];
}

const fmt = (s) =>
  `max |Δbox| ${s.maxBoxDelta.toExponential(2)} px (all 300; matched detections ${s.maxMatchedBoxDelta.toFixed(2)} px), max |Δscore| ${s.maxScoreDelta.toExponential(2)}, ` +
  `detections@0.4 ${s.testDetections} vs ${s.refDetections}, matched ${s.matched}, identical images ${s.identicalImages}/${s.images}, inf/NaN ${s.nonFinite}`;

for (const name of variants) {
  const modelPath = resolveModel(name).path;
  const size = VARIANTS[name]?.inputSize ?? 640;
  const { inputs, preprocessing } = await loadInputs(size);
  console.log(`\n${name}: ${modelPath}, ${inputs.length} images, ${preprocessing}`);
  const ref = await createSession(modelPath);
  const refAp = await cocoAp(ref, inputs, size);
  if (refAp !== undefined) console.log(`  original FP32                 AP ${refAp.toFixed(4)}`);
  const cases = [
    ['GridSample rewrite (FP32)', { rewriteGridSample: true }],
    ['FP16 emulation, mixed plan', { emulateFp16: true }],
    ['FP16 emulation, all-FP16', { emulateFp16: true, fp16Plan: 'all' }],
    ['real FP16 graph, mixed (ORT CPU)', { precision: 'fp16' }],
  ];
  for (const [label, options] of cases) {
    const r = await prepareModel(modelPath, options);
    const session = await createSession(r.bytes);
    const s = summarise(await compareSessions(ref, session, inputs, size, 0.4));
    const ap = await cocoAp(session, inputs, size);
    await session.release();
    console.log(`  ${label.padEnd(30)}${ap !== undefined ? `AP ${ap.toFixed(4)} (Δ ${(100 * (ap - refAp)).toFixed(2)} AP)  ` : ''}${fmt(s)}`);
    if (r.rewritten !== 6) console.log(`    rewritten ${r.rewritten} GridSample; warnings: ${r.warnings.join('; ')}`);
  }
  await ref.release();
}
