#!/usr/bin/env node
/**
 * Peak memory of `deimv2 detect` on images that are small on disk and huge decoded (issue 9: a
 * folder of all-black 16383x16383 PNGs, 6 MB on disk, 805 MB each decoded). Peak RSS is the
 * kernel's high-water mark of the whole process (VmHWM), read while it runs. A benchmark, not a
 * timed test: the figure to meet is four such PNGs with --threads 4 under 2.5 GB.
 *
 *   node bench/memory.js [--images 4] [--threads 4] [--side 16383] [--max-memory 1GB] [--batch-case] [--video-case]
 *
 * --batch-case also compares --batch 32 with --batch 1 on 32 noisy 4000x3000 JPEGs.
 * --video-case runs a video of eight black 16000x16000 frames (6 MB on disk, 768 MB a frame
 * decoded; ffmpeg takes no larger frame) with --json and with --out, and reports ffmpeg's peaks too.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const count = Number(arg('images', '4'));
const threads = arg('threads', '4');
const side = Number(arg('side', '16383'));
const maxMemory = arg('max-memory', undefined);

/** VmHWM of a process in bytes (0 once it is gone). */
function hwm(pid) {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** The child processes of `pid` with their command names. */
function children(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map((c) => ({ pid: Number(c), name: readFileSync(`/proc/${c}/comm`, 'utf8').trim() }));
  } catch {
    return [];
  }
}

/**
 * Runs the CLI and returns its peak RSS in bytes (VmHWM, polled), its wall time, and the peaks of
 * its ffmpeg children (in the order they started).
 */
function peakOf(argv) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
    let peak = 0;
    const ffmpeg = new Map();
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(() => {
      peak = Math.max(peak, hwm(child.pid));
      for (const c of children(child.pid)) if (c.name === 'ffmpeg') ffmpeg.set(c.pid, Math.max(ffmpeg.get(c.pid) ?? 0, hwm(c.pid)));
    }, 20);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`deimv2 ${argv.join(' ')} exited with ${code}: ${stderr}`));
      else resolve({ peak, seconds: (performance.now() - t0) / 1000, ffmpeg: [...ffmpeg.values()] });
    });
  });
}

const gb = (b) => `${(b / 2 ** 30).toFixed(2)} GB`;
const budget = maxMemory ? ['--max-memory', maxMemory] : [];

/** Four (--images) all-black side x side PNGs through --threads workers. */
async function hugePngs(dir) {
  const black = await sharp({ create: { width: side, height: side, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png({ compressionLevel: 9 }).toBuffer();
  const pngs = [];
  for (let i = 0; i < count; i++) {
    const file = path.join(dir, `black-${i}.png`);
    await sharp(black).toFile(file);
    pngs.push(file);
  }
  const r = await peakOf(['detect', ...pngs, '--threads', threads, '--quiet', '--backend', 'cpu', ...budget]);
  console.log(`${count} black ${side}x${side} PNGs (${(black.length / 1e6).toFixed(1)} MB each on disk), --threads ${threads}${maxMemory ? ` --max-memory ${maxMemory}` : ''}: ` +
    `peak RSS ${gb(r.peak)} in ${r.seconds.toFixed(1)} s (target < 2.5 GB)`);
}

/** 32 noisy 4000x3000 JPEGs at --batch 1 and --batch 32. */
async function batchCase(dir) {
  const noise = await sharp({ create: { width: 4000, height: 3000, channels: 3, background: { r: 90, g: 120, b: 150 }, noise: { type: 'gaussian', mean: 128, sigma: 40 } } }).jpeg({ quality: 90 }).toBuffer();
  const jpegs = [];
  for (let i = 0; i < 32; i++) {
    const file = path.join(dir, `noise-${i}.jpg`);
    await sharp(noise).toFile(file);
    jpegs.push(file);
  }
  for (const batch of ['1', '32']) {
    const b = await peakOf(['detect', ...jpegs, '--batch', batch, '--quiet', '--backend', 'cpu', ...budget]);
    console.log(`32 4000x3000 JPEGs, --batch ${batch}: peak RSS ${gb(b.peak)} in ${b.seconds.toFixed(1)} s`);
  }
}

/** Eight black 16000x16000 frames in a 6 MB video, with --json and with --out. */
async function videoCase(dir) {
  const video = path.join(dir, 'black-16000.mkv');
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'color=black:s=16000x16000:r=5', '-t', '1.6', '-c:v', 'png', video]);
  const mb = (readFileSync(video).length / 1e6).toFixed(1);
  for (const out of [['--json', path.join(dir, 'v.jsonl')], ['--out', path.join(dir, 'v.mp4')]]) {
    const r = await peakOf(['detect', video, ...out, '--quiet', '--backend', 'cpu', ...budget]);
    console.log(`video of 8 black 16000x16000 frames (${mb} MB on disk), ${out[0]}: peak RSS ${gb(r.peak)} (deimv2), ffmpeg ${r.ffmpeg.map(gb).join(' + ')} in ${r.seconds.toFixed(1)} s`);
  }
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'deimv2-memory-'));
try {
  sharp.cache(false);
  if (count > 0) await hugePngs(dir);
  if (args.includes('--batch-case')) await batchCase(dir);
  if (args.includes('--video-case')) await videoCase(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
