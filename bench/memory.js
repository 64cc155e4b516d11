#!/usr/bin/env node
/**
 * Peak memory of `deimv2 detect` on images that are small on disk and huge decoded (issue 9: a
 * folder of all-black 16383x16383 PNGs, 6 MB on disk, 805 MB each decoded). Peak RSS is the
 * kernel's high-water mark of the whole process (VmHWM), read while it runs. A benchmark, not a
 * timed test: the figure to meet is four such PNGs with --threads 4 under 2.5 GB.
 *
 *   node bench/memory.js [--images 4] [--threads 4] [--side 16383] [--max-memory 1GB] [--batch-case]
 *
 * --batch-case also compares --batch 32 with --batch 1 on 32 noisy 4000x3000 JPEGs.
 */
import { spawn } from 'node:child_process';
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

/** Runs the CLI and returns its peak RSS in bytes (VmHWM, polled) and its wall time. */
function peakOf(argv) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
    let peak = 0;
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const poll = setInterval(() => {
      try {
        const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0);
        peak = Math.max(peak, kb * 1024);
      } catch {
        // exited between polls
      }
    }, 20);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearInterval(poll);
      if (code !== 0) reject(new Error(`deimv2 ${argv.join(' ')} exited with ${code}: ${stderr}`));
      else resolve({ peak, seconds: (performance.now() - t0) / 1000 });
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

const dir = mkdtempSync(path.join(os.tmpdir(), 'deimv2-memory-'));
try {
  sharp.cache(false);
  if (count > 0) await hugePngs(dir);
  if (args.includes('--batch-case')) await batchCase(dir);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
