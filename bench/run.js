#!/usr/bin/env node
/**
 * `npm run bench`: FPS of every DEIMv2 variant whose model file is found, on every available
 * backend (cpu always; TensorRT fp16 and fp32 where the addon works), at batch 1 and a larger batch:
 * model-only FPS and latency (median, p90, p99), end-to-end image FPS (COCO val2017 files) and
 * end-to-end video FPS (decode -> detect -> draw -> encode). Prints a markdown table and writes
 * bench/results/<date>-<host>.json and .svg (AP against FPS, like the DEIMv2 paper's figure);
 * --quick runs (short, rough) are marked as such in the table, the JSON ("run": "quick") and the
 * chart, and are written as <date>-<host>-quick.json/.svg.
 *
 *   npm run bench -- [--variants atto,femto] [--backends cpu,tensorrt] [--model-dir DIR]
 *                    [--batch 8] [--quick] [--ap atto=29.0,femto=38.1] [--images DIR] [--video FILE]
 *                    [--out bench/results] [--skip-breakdown]
 *
 * Then (unless --skip-breakdown) the per-stage CPU breakdown of four whole `deimv2` runs on the CPU
 * backend (one image, a folder, an annotated video, eval: bench/breakdown.js), also in the JSON.
 *
 * A row that fails shows its error in the status column; the table goes on.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { machineInfo } from './lib/machine.js';
import { measureImages, measureModelOnly, measureVideo } from './lib/measure.js';
import { markdownTable, svgChart } from './lib/report.js';
import { runBreakdowns } from './breakdown.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = await import(path.join(root, 'dist/index.js'));

const { values: args } = parseArgs({
  options: {
    variants: { type: 'string' },
    backends: { type: 'string' },
    'model-dir': { type: 'string' },
    batch: { type: 'string', default: '8' },
    quick: { type: 'boolean', default: false },
    ap: { type: 'string' },
    images: { type: 'string', default: path.resolve(root, '../shared/coco/val2017') },
    video: { type: 'string', default: path.resolve(root, '../shared/videos/car-detection.mp4') },
    out: { type: 'string', default: path.join(root, 'bench/results') },
    'skip-breakdown': { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(readHelp());
  process.exit(0);
}

function readHelp() {
  return 'usage: npm run bench -- [--variants atto,femto] [--backends cpu,tensorrt] [--model-dir DIR] [--batch 8] [--quick] [--ap atto=29.0] [--images DIR] [--video FILE] [--out DIR] [--skip-breakdown]';
}

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

// --- what to measure -------------------------------------------------------------------------
const largeBatch = Number(args.batch);
if (!Number.isInteger(largeBatch) || largeBatch < 1) fail(`--batch must be a positive integer, got ${args.batch}`);
const batches = largeBatch > 1 ? [1, largeBatch] : [1];

const found = dist.findVariantFiles(args['model-dir'] ? { modelDir: args['model-dir'] } : {});
let variants = [...found.keys()];
if (args.variants) {
  const wanted = args.variants.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const w of wanted) if (!(w in dist.VARIANTS)) fail(`unknown variant "${w}" (expected ${dist.VARIANT_NAMES.join(', ')})`);
  const missing = wanted.filter((w) => !found.has(w));
  if (missing.length) console.error(`bench: no model file for ${missing.join(', ')} (searched ${dist.modelSearchDirs(args['model-dir'] ? { modelDir: args['model-dir'] } : {}).map((d) => d.dir).join(', ')}); skipped`);
  variants = wanted.filter((w) => found.has(w));
}
variants.sort((a, b) => dist.VARIANT_NAMES.indexOf(a) - dist.VARIANT_NAMES.indexOf(b));
if (variants.length === 0) fail('no model files found: pass --model-dir or set DEIMV2_MODEL_DIR');

const tensorrt = dist.tensorrtAvailability();
const wantedBackends = (args.backends ?? 'cpu,tensorrt').split(',').map((s) => s.trim()).filter(Boolean);
for (const b of wantedBackends) if (b !== 'cpu' && b !== 'tensorrt') fail(`unknown backend "${b}" (expected cpu, tensorrt)`);
const targets = [];
if (wantedBackends.includes('cpu')) targets.push({ backend: 'cpu', precision: 'fp32' });
if (wantedBackends.includes('tensorrt')) {
  if (tensorrt.available) targets.push({ backend: 'tensorrt', precision: 'fp16' }, { backend: 'tensorrt', precision: 'fp32' });
  else console.error(`bench: skipping tensorrt: ${tensorrt.detail}`);
}

const apOverrides = new Map((args.ap ?? '').split(',').filter(Boolean).map((kv) => {
  const [k, v] = kv.split('=');
  if (!k || !Number.isFinite(Number(v))) fail(`--ap takes variant=AP pairs, got "${kv}"`);
  return [k.toLowerCase(), Number(v)];
}));
const apOf = (v) => (apOverrides.has(v) ? { ap: apOverrides.get(v), source: 'deimv2 eval' } : { ap: dist.VARIANTS[v].paperAP, source: 'paper' });

// Run lengths: the default run fits in about 20 minutes for Atto and Femto on 2 CPU cores.
const plan = args.quick
  ? { warmup: 5, runs: 20, largeRuns: 5, imagePasses: 1, videoFrames: 120 }
  : { warmup: 20, runs: 200, largeRuns: 40, imagePasses: 3, videoFrames: 377 };

const imageFiles = readdirSync(args.images).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().map((f) => path.join(args.images, f));
if (imageFiles.length === 0) fail(`no images in ${args.images}`);
const { data, info } = await sharp(imageFiles[0]).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const sampleImage = { data, width: info.width, height: info.height, channels: 3 };
const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'deimv2-bench-'));
const machine = machineInfo({ tensorrt, ffmpeg: dist.ffmpegInfo() });

// --- measure ---------------------------------------------------------------------------------
const rows = [];
const started = performance.now();
for (const variant of variants) {
  const modelPath = found.get(variant).path;
  const config = dist.VARIANTS[variant];
  for (const { backend, precision } of targets) {
    for (const batch of batches) {
      const row = { variant, backend, precision, batch, model: undefined, images: undefined, video: undefined, status: 'ok' };
      rows.push(row);
      const label = `${variant} ${backend}${backend === 'cpu' ? '' : ' ' + precision} batch ${batch}`;
      process.stderr.write(`bench: ${label} ...`);
      const problems = [];
      try {
        row.model = await measureModelOnly(dist, {
          modelPath, variant, backend, precision, batch, size: config.inputSize, normalization: config.normalization,
          warmup: plan.warmup, runs: batch === 1 ? plan.runs : plan.largeRuns, image: sampleImage,
        });
      } catch (e) {
        problems.push(`model: ${e.message.split('\n')[0]}`);
      }
      let detector;
      try {
        detector = await dist.Detector.create({ model: modelPath, backend, batch, ...(backend === 'tensorrt' ? { precision } : {}) });
        row.images = await measureImages(detector, imageFiles, plan.imagePasses);
        // Video frames go through detect() one by one (several in flight), so batch does not apply.
        if (batch === 1) row.video = await measureVideo(dist, detector, args.video, { tmpDir, maxFrames: plan.videoFrames });
      } catch (e) {
        problems.push(`end to end: ${e.message.split('\n')[0]}`);
      } finally {
        await detector?.close();
      }
      if (problems.length) row.status = problems.join('; ');
      process.stderr.write(` model ${row.model?.fps.toFixed(1) ?? '-'} FPS, images ${row.images?.fps.toFixed(1) ?? '-'} FPS, video ${row.video?.fps.toFixed(1) ?? '-'} FPS${problems.length ? ` (${row.status})` : ''}\n`);
    }
  }
}
rmSync(tmpDir, { recursive: true, force: true });

// --- where the CPU goes: four whole runs of the CLI, stage by stage -------------------------------
let breakdown;
if (!args['skip-breakdown'] && variants.includes('atto')) {
  process.stderr.write('bench: per-stage breakdown (one image, folder, video, eval) ...\n');
  try {
    breakdown = runBreakdowns({ images: args.images, video: args.video, folderImages: args.quick ? 100 : 632 });
  } catch (e) {
    breakdown = { results: [], text: `breakdown failed: ${e.message.split('\n')[0]}` };
  }
}

// --- report ----------------------------------------------------------------------------------
const run = args.quick ? 'quick' : 'full';
const table = markdownTable(rows, run);
const date = new Date().toISOString().slice(0, 10);
// Quick runs get their own name: they never replace a full run's results of the same day.
const base = `${date}-${machine.host.replace(/[^A-Za-z0-9._-]/g, '_')}${args.quick ? '-quick' : ''}`;
mkdirSync(args.out, { recursive: true });
const jsonPath = path.join(args.out, `${base}.json`);
const svgPath = path.join(args.out, `${base}.svg`);
const result = {
  run,
  date: new Date().toISOString(),
  machine,
  options: { variants, backends: targets, batches, quick: args.quick, plan, images: args.images, imageCount: imageFiles.length, video: args.video },
  durationS: Math.round((performance.now() - started) / 1000),
  notes: 'model: CPU = one onnxruntime-node session with intra-op threads = cores; TensorRT = the package backend. images: Detector.detectBatch over the image files (decode, resize, infer, postprocess). video: detectVideo with an annotated MP4 output (decode, detect, draw, encode). Warm-up excluded; spread = (p90 - p10) / median of the per-run latencies.',
  rows: rows.map((r) => ({ ...r, run, ap: apOf(r.variant) })),
  ...(breakdown ? { breakdown: breakdown.results } : {}),
};
writeFileSync(jsonPath, JSON.stringify(result, null, 2) + '\n');
writeFileSync(svgPath, svgChart(rows, apOf, `DEIMv2 AP vs speed: ${machine.cpu}${machine.gpu.length ? ' / ' + machine.gpu[0].split(',')[0] : ''}`, run) + '\n');

console.log(`\nDEIMv2 benchmark: ${machine.cpu} (${machine.cores} cores)${machine.gpu.length ? `, ${machine.gpu.join('; ')}` : ''}; onnxruntime-node ${machine.onnxruntime}; Node ${machine.node}; load ${machine.loadAverage.join(' ')}`);
console.log(`${args.quick ? 'quick run' : 'full run'}: model-only ${plan.runs} runs at batch 1 (${plan.largeRuns} at batch ${largeBatch}) after ${plan.warmup} warm-up; images ${plan.imagePasses} pass(es) over ${imageFiles.length} files; video up to ${plan.videoFrames} frames of ${path.basename(args.video)}\n`);
console.log(table);
if (breakdown) console.log(`\nWhere the CPU goes (atto, cpu backend; whole deimv2 processes, start-up included; core-ms by stage):\n\n${breakdown.text}`);
console.log(`\nwrote ${path.relative(process.cwd(), jsonPath)} and ${path.relative(process.cwd(), svgPath)} (${result.durationS} s)`);
