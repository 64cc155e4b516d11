/**
 * What a new user meets in the repository: npm commands print no warnings about the project's
 * configuration (an `.npmrc` key such as `onnxruntime-node-install=skip` made every npm command
 * print `npm warn Unknown project config`), and onnxruntime-node's download of CUDA libraries
 * stays skipped through npm's own `allowScripts` policy, so installs work offline.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

describe('npm configuration of the repository', () => {
  it('an npm command prints no warning', () => {
    const r = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('"deimv2"');
    expect(r.stderr).not.toMatch(/npm warn/i);
  });

  it('.npmrc, if any, holds no key npm does not know', () => {
    const npmrc = path.join(ROOT, '.npmrc');
    if (!existsSync(npmrc)) return;
    expect(readFileSync(npmrc, 'utf8')).not.toMatch(/onnxruntime-node-install/);
  });

  it("onnxruntime-node's install script (a CUDA download from NuGet on linux/x64) is denied by allowScripts", () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
    expect(pkg.allowScripts?.['onnxruntime-node']).toBe(false);
  });
});
