#!/usr/bin/env node
/**
 * Per-stage CPU breakdown of the four whole-process cases of issue 18 (Atto, CPU backend), each
 * run once as `deimv2` would be run by a user (start-up included):
 *   one image:  deimv2 detect examples/example.jpg --quiet
 *   folder:     deimv2 detect DIR --json out.json --quiet   (DIR: the COCO images repeated to --folder-images)
 *   video:      deimv2 detect car-detection.mp4 --out out.mp4 --quiet
 *   eval:       deimv2 eval -a instances.json -r results.json   (5,000 images, 500,000 detections, synthetic)
 * For each: wall time, CPU time, core-ms by stage (see bench/lib/breakdown.js for what each row
 * holds) and each core's idle share. `npm run bench` prints the same tables after its own.
 *
 *   npm run build && node bench/breakdown.js [--cases one,folder,video,eval] [--folder-images 200]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { breakdownTable, measureBreakdown } from './lib/breakdown.js';
import { writeEvalData } from './lib/eval-data.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

/** Runs the cases asked for; returns their tables (markdown text) and the raw figures. */
export function runBreakdowns({ cases = ['one', 'folder', 'video', 'eval'], images, video, folderImages = 200, model = 'atto' }) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-breakdown-'));
  const out = [];
  try {
    const common = ['--model', model, '--backend', 'cpu', '--quiet'];
    for (const c of cases) {
      if (c === 'one') {
        const b = measureBreakdown([CLI, 'detect', path.join(ROOT, 'examples', 'example.jpg'), ...common], { cwd: ROOT, tmpDir: tmp, name: 'one image (deimv2 detect example.jpg)' });
        out.push({ case: c, units: 1, unitName: 'image', ...b });
      } else if (c === 'folder') {
        const base = readdirSync(images).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
        const dir = path.join(tmp, 'folder');
        mkdirSync(dir);
        for (let i = 0; i < folderImages; i++) symlinkSync(path.join(images, base[i % base.length]), path.join(dir, `${String(i).padStart(5, '0')}-${base[i % base.length]}`));
        const b = measureBreakdown([CLI, 'detect', dir, '--json', path.join(tmp, 'folder.json'), ...common], { cwd: ROOT, tmpDir: tmp, name: `folder of ${folderImages} COCO images (deimv2 detect DIR --json)` });
        out.push({ case: c, units: folderImages, unitName: 'image', ...b });
      } else if (c === 'video') {
        const b = measureBreakdown([CLI, 'detect', video, '--out', path.join(tmp, 'out.mp4'), ...common], { cwd: ROOT, tmpDir: tmp, name: `video ${path.basename(video)} (deimv2 detect --out out.mp4)` });
        out.push({ case: c, units: videoFrames(video), unitName: 'frame', ...b });
      } else if (c === 'eval') {
        const { gtFile, resultsFile } = writeEvalData(tmp, { images: 5000, dets: 100 });
        const b = measureBreakdown([CLI, 'eval', '-a', gtFile, '-r', resultsFile], { cwd: ROOT, tmpDir: tmp, name: 'eval of 5,000 images / 500,000 detections (deimv2 eval -a -r)' });
        out.push({ case: c, units: 5000, unitName: 'image', ...b });
      } else {
        throw new Error(`unknown case "${c}" (expected one, folder, video, eval)`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { results: out, text: out.map((b) => breakdownTable(b, b.units, b.unitName)).join('\n\n') };
}

/** Frames in the video (ffprobe counts them; 1 when it cannot). */
function videoFrames(file) {
  const r = spawnSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file], { encoding: 'utf8' });
  return Number((r.stdout ?? '').trim()) || 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string', default: 'one,folder,video,eval' },
      'folder-images': { type: 'string', default: '200' },
      images: { type: 'string', default: path.resolve(ROOT, '../shared/coco/val2017') },
      video: { type: 'string', default: path.resolve(ROOT, '../shared/videos/car-detection.mp4') },
    },
  });
  const { text } = runBreakdowns({ cases: values.cases.split(','), images: values.images, video: values.video, folderImages: Number(values['folder-images']) });
  console.log(`per-stage CPU (core-ms; load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')} at the end)\n`);
  console.log(text);
}
