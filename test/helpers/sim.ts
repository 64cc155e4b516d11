/**
 * The simulated GPU runtime in tests: environment, CLI runs, image folders and result comparison.
 * Tests that use it set DEIMV2_GPU_RUNTIME=simulated BEFORE importing anything from dist/ (the
 * addon is loaded once per process, and vitest runs each test file in its own process).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLI, COCO_IMAGES, MODEL_DIR, ROOT } from './paths.js';

/** The environment of a simulated-runtime process: seeded random stream delays up to 100 us. */
export const SIM_ENV: Record<string, string> = {
  DEIMV2_GPU_RUNTIME: 'simulated',
  DEIMV2_MODEL_DIR: MODEL_DIR,
  DEIMV2_SIM_DELAY_US: '100',
  DEIMV2_SIM_SEED: '7',
};

export function useSimulatedRuntime(): void {
  Object.assign(process.env, SIM_ENV);
}

export interface CliRun { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }

/** Runs `deimv2 ...` with the simulated runtime (plus `env`); never throws. */
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { ...process.env, ...SIM_ENV, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Runs `node script` with the simulated runtime; never throws. */
export function runNode(script: string, args: readonly string[], env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env: { ...process.env, ...SIM_ENV, ...env } });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `deimv2-${prefix}-`));
}

/** A folder of links to the first `n` COCO val2017 images (sorted by name). */
export function cocoSubset(dir: string, n: number): string {
  const out = path.join(dir, 'images');
  mkdirSync(out, { recursive: true });
  for (const name of readdirSync(COCO_IMAGES).filter((f) => f.endsWith('.jpg')).sort().slice(0, n)) {
    symlinkSync(path.join(COCO_IMAGES, name), path.join(out, name));
  }
  return out;
}

interface JsonResults { results: { file?: string; width: number; height: number; detections: unknown[]; error?: unknown }[] }

/** What must be equal between two `detect --json` outputs: files, sizes, detections (order, boxes, scores). */
export function detectionsOf(json: JsonResults): unknown[] {
  return json.results.map((r) => ({ file: r.file, width: r.width, height: r.height, detections: r.detections, error: r.error }));
}
