/**
 * A closed stdout (`deimv2 ... --json - | head -c 100`): the run stops quietly, with no unhandled
 * 'error' event or stack trace, and leaves no temporary file (before: EPIPE, a stack trace, exit 1).
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, MODEL_DIR, SHARED } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

/** Runs the CLI with its stdout read for `bytes` bytes and then closed, as `| head -c N` does. */
function headOf(args: string[], bytes: number, cwd: string): Promise<{ code: number | null; signal: string | null; stderr: string; got: number }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let got = 0;
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= bytes) child.stdout.destroy();
    });
    child.on('close', (code, signal) => resolve({ code, signal, stderr, got }));
  });
}

describe('closed stdout', () => {
  it('detect <video> --json - | head -c 100 stops quietly (no stack trace, no temporary file)', async () => {
    const dir = tempDir();
    const video = await headOf(['detect', path.join(SHARED, 'videos/car-detection.mp4'), '--json', '-', '--backend', 'cpu', '--quiet'], 100, dir);
    expect(video.got).toBeGreaterThanOrEqual(100);
    expect(video.stderr).not.toMatch(/Unhandled|EPIPE|\n\s+at /);
    expect(video.signal ?? video.code).not.toBe(0);
    expect(readdirSync(dir)).toEqual([]);
  });
});
