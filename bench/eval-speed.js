#!/usr/bin/env node
/**
 * How fast `deimv2 eval` scores a COCO-val-sized results file, end to end from JSON files.
 *
 * Generates (deterministically, into a temp dir) 5,000 images with about 35,000 ground-truth
 * boxes over the 80 COCO categories (1% crowds) and 100 detections per image (500,000: jittered
 * copies of the ground truth and random boxes), then times reading + JSON parsing + validation,
 * evaluate (IoU + matching), accumulate and summarize.
 *
 *   npm run build && node bench/eval-speed.js [--images 5000] [--dets 100] [--keep]
 *
 * prints: eval 5000 images, 35012 gt, 500000 dets: 6.2 s (parse 2.1 s, evaluate 3.0 s, accumulate 1.1 s; cpu 6.0 s)
 * Wall-clock seconds, then the process's CPU seconds for the same span (a check on a busy machine).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readGroundTruth, readResults } from '../dist/eval/coco-dataset.js';
import { accumulate, defaultParams, matchDetections, summarize } from '../dist/eval/cocoeval.js';
import { formatSummary } from '../dist/eval/summary-format.js';

const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '5000' },
    dets: { type: 'string', default: '100' },
    keep: { type: 'boolean', default: false },
    summary: { type: 'boolean', default: false },
  },
});
const imageCount = Number(args.images);
const detsPerImage = Number(args.dets);

// A small LCG: the same data on every machine and run.
let state = 0x2f6b3a1d;
const random = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 4294967296;
};
const round2 = (v) => Math.round(v * 100) / 100;

const COCO_IDS = [
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
  34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
  61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
];

function generate() {
  const images = [];
  const annotations = [];
  const results = [];
  for (let i = 0; i < imageCount; i++) {
    const id = 100000 + i * 37;
    const width = 640;
    const height = 480;
    images.push({ id, file_name: `${String(id).padStart(12, '0')}.jpg`, width, height });
    // 0..14 boxes per image: 7 on average, like COCO val (36,781 boxes on 5,000 images).
    const gtHere = [];
    const n = Math.floor(random() * 15);
    for (let j = 0; j < n; j++) {
      // Sizes spread over small, medium and large.
      const w = round2(4 + random() ** 2 * 400);
      const h = round2(4 + random() ** 2 * 300);
      const x = round2(random() * (width - w));
      const y = round2(random() * (height - h));
      const box = { id: annotations.length + 1, image_id: id, category_id: COCO_IDS[Math.floor(random() * 80)],
        bbox: [x, y, w, h], area: round2(w * h * (0.5 + random() * 0.3)), iscrowd: random() < 0.01 ? 1 : 0 };
      annotations.push(box);
      gtHere.push(box);
    }
    for (let j = 0; j < detsPerImage; j++) {
      let bbox;
      let categoryId;
      if (gtHere.length > 0 && random() < 0.5) {
        const g = gtHere[Math.floor(random() * gtHere.length)];
        const jitter = () => 1 + (random() - 0.5) * 0.4;
        bbox = [round2(g.bbox[0] * jitter()), round2(g.bbox[1] * jitter()), round2(g.bbox[2] * jitter()), round2(g.bbox[3] * jitter())];
        categoryId = random() < 0.8 ? g.category_id : COCO_IDS[Math.floor(random() * 80)];
      } else {
        const w = round2(2 + random() * 300);
        const h = round2(2 + random() * 200);
        bbox = [round2(random() * (width - w)), round2(random() * (height - h)), w, h];
        categoryId = gtHere.length > 0 && random() < 0.5 ? gtHere[0].category_id : COCO_IDS[Math.floor(random() * 80)];
      }
      results.push({ image_id: id, category_id: categoryId, bbox, score: Math.round(random() * 1e6) / 1e6 });
    }
  }
  const categories = COCO_IDS.map((id) => ({ id, name: `category ${id}` }));
  return { gt: { images, annotations, categories }, results };
}

const dir = mkdtempSync(join(tmpdir(), 'deimv2-eval-bench-'));
const gtFile = join(dir, 'instances.json');
const resultsFile = join(dir, 'results.json');
const { gt: gtJson, results: resultsJson } = generate();
writeFileSync(gtFile, JSON.stringify(gtJson));
writeFileSync(resultsFile, JSON.stringify(resultsJson));

const seconds = (from, to) => ((to - from) / 1000).toFixed(1);
// CPU time too: on a shared, busy machine the wall clock says more about the neighbours.
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const gt = await readGroundTruth(gtFile);
const dt = await readResults(resultsFile, gt);
const t1 = performance.now();
const table = matchDetections(gt, dt, defaultParams());
const t2 = performance.now();
const accumulated = accumulate(table);
const lines = summarize(accumulated);
const t3 = performance.now();
const cpu = process.cpuUsage(cpu0);

console.log(
  `eval ${gt.imageIds.length} images, ${gt.boxes.count} gt, ${dt.count} dets: ${seconds(t0, t3)} s ` +
    `(parse ${seconds(t0, t1)} s, evaluate ${seconds(t1, t2)} s, accumulate ${seconds(t2, t3)} s; ` +
    `cpu ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s)`,
);
if (args.summary) console.log(formatSummary(lines));
if (args.keep) console.log(`files kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });
