#!/usr/bin/env node
/**
 * How fast `deimv2 eval` scores a COCO-val-sized results file, end to end from JSON files.
 *
 * Generates (deterministically, into a temp dir) 5,000 images with about 35,000 ground-truth
 * boxes over the 80 COCO categories (1% crowds) and 100 detections per image (500,000: jittered
 * copies of the ground truth and random boxes), then times reading + JSON parsing + validation,
 * evaluate (IoU + matching), accumulate and summarize.
 *
 *   npm run build && node bench/eval-speed.js [--images 5000] [--dets 100] [--keep] [--pycocotools python3]
 *
 * prints: eval 5000 images, 35012 gt, 500000 dets: 6.2 s (parse 2.1 s, evaluate 3.0 s, accumulate 1.1 s; cpu 6.0 s)
 * Wall-clock seconds, then the process's CPU seconds for the same span (a check on a busy machine).
 *
 * With --pycocotools PYTHON (an interpreter that can import pycocotools), the same files are then
 * scored by `deimv2 eval` and by pycocotools (COCO + loadRes + evaluate/accumulate/summarize), each
 * as a whole process, in turn --runs times (default 1); it prints each one's wall and CPU seconds,
 * the ratios, and whether the 12 stats agree to the last bit.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
    pycocotools: { type: 'string' },
    runs: { type: 'string', default: '1' },
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
if (args.pycocotools) comparePycocotools(args.pycocotools, Number(args.runs));
if (args.keep) console.log(`files kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });

/** One whole process, timed: its wall seconds and its stdout. */
function timed(cmd, argv) {
  const t0 = performance.now();
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { wall, stdout: r.stdout };
}

/** `deimv2 eval` and pycocotools on the same files, in turn; their times and whether their stats agree. */
function comparePycocotools(python, runs) {
  const script = join(dir, 'pycocotools_eval.py');
  writeFileSync(script, [
    'import sys, contextlib, io, json',
    'from pycocotools.coco import COCO',
    'from pycocotools.cocoeval import COCOeval',
    'with contextlib.redirect_stdout(io.StringIO()):',
    '    gt = COCO(sys.argv[1]); dt = gt.loadRes(sys.argv[2])',
    "    e = COCOeval(gt, dt, 'bbox'); e.evaluate(); e.accumulate(); e.summarize()",
    'print(json.dumps([float(x) for x in e.stats]))',
    '',
  ].join('\n'));
  const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;
  const ours = [], theirs = [];
  let same = true;
  for (let i = 0; i < runs; i++) {
    const cpu0 = childCpu();
    const a = timed(process.execPath, [cli, 'eval', '-a', gtFile, '-r', resultsFile, '--json']);
    const cpu1 = childCpu();
    const b = timed(python, [script, gtFile, resultsFile]);
    const cpu2 = childCpu();
    ours.push({ wall: a.wall, cpu: cpu1 - cpu0 });
    theirs.push({ wall: b.wall, cpu: cpu2 - cpu1 });
    const mine = Object.values(JSON.parse(a.stdout).metrics);
    const ref = JSON.parse(b.stdout.trim().split('\n').pop());
    same &&= mine.length === 12 && mine.every((v, k) => Object.is(v, ref[k]));
  }
  const med = (xs) => {
    const s = [...xs].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const fmt = (xs, k) => `${med(xs.map((x) => x[k])).toFixed(2)} s`;
  console.log(`deimv2 eval (whole process): wall ${fmt(ours, 'wall')}, cpu ${fmt(ours, 'cpu')}; pycocotools: wall ${fmt(theirs, 'wall')}, cpu ${fmt(theirs, 'cpu')} (median of ${runs})`);
  console.log(`pycocotools / deimv2: wall ${med(theirs.map((t, i) => t.wall / ours[i].wall)).toFixed(1)}x, cpu ${med(theirs.map((t, i) => t.cpu / ours[i].cpu)).toFixed(1)}x; the 12 stats ${same ? 'agree to the last bit' : 'DIFFER'}`);
}

/** CPU seconds (user + system) of the children waited for so far: cutime + cstime of /proc/self/stat (Linux), in clock ticks of 1/100 s. */
function childCpu() {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}
