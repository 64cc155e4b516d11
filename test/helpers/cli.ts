/** Runs the built CLI (`node dist/cli/main.js ...`) with the test models; never throws. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { CLI, MODEL_DIR, ROOT } from './paths.js';

const run = promisify(execFile);

export async function deimv2(args: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR }, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}
