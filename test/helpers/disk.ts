/** Tiny disks for full-disk tests: a tmpfs mounted on a new temporary folder (root only). */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll } from 'vitest';
import { tempDir } from './images.js';

const mounts: string[] = [];

/** A tmpfs of `size` (e.g. '64k') mounted on a new folder, unmounted after the file's tests; undefined when not root or mount fails. */
export function tinyDisk(size: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = tempDir('deimv2-full-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  if (mounts.length === 0) {
    afterAll(() => {
      for (const m of mounts.splice(0)) {
        execFileSync('umount', [m], { stdio: 'ignore' });
        rmSync(m, { recursive: true, force: true });
      }
    });
  }
  mounts.push(dir);
  return dir;
}
