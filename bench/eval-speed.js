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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { readGroundTruth, readResults } from '../dist/eval/coco-dataset.js';
import { accumulate, defaultParams, matchDetections, summarize } from '../dist/eval/cocoeval.js';
import { formatSummary } from '../dist/eval/summary-format.js';
import { writeEvalData } from './lib/eval-data.js';

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

const dir = mkdtempSync(join(tmpdir(), 'deimv2-eval-bench-'));
const { gtFile, resultsFile } = writeEvalData(dir, { images: imageCount, dets: detsPerImage });

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
