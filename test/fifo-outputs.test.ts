/**
 * Outputs that are pipes: --json onto a FIFO that nobody reads (before: the run never ended, not
 * even on a second SIGTERM: the exit path's synchronous open blocked the main thread), a FIFO
 * whose reader comes late and reads slowly, and --json /dev/stdout when stdout is a pipe (before:
 * "ENOENT: no such file or directory, realpath '/dev/stdout'").
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFileAtomicSync } from '../dist/output/atomic.js';
import { deimv2 } from './helpers/cli.js';
import { tempDir } from './helpers/images.js';
import { EXAMPLE } from './helpers/paths.js';

const dir = tempDir('deimv2-fifo-');
function fifo(name: string): string {
  const p = path.join(dir, name);
  execFileSync('mkfifo', [p]);
  return p;
}

describe('FIFOs as outputs', () => {
  it('--json onto a FIFO that no process reads: ERR_OUTPUT_WRITE after the 10 s wait, not a hang', async () => {
    const p = fifo('nobody.json');
    const started = performance.now();
    const r = await deimv2(['detect', EXAMPLE, '-b', 'cpu', '-q', '--json', p]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nobody\.json is a FIFO \(named pipe\) that no process opened for reading within 10 s; nothing was written \[ERR_OUTPUT_WRITE\]/);
    expect(performance.now() - started).toBeLessThan(60_000);
  });

  it('the exit path (second Ctrl-C) gives up at once instead of blocking', () => {
    const p = fifo('exit.json');
    expect(() => writeFileAtomicSync(p, '{}')).toThrow(/exit\.json is a FIFO \(named pipe\) that no process opened for reading; nothing was written/);
  });

  it('a reader that comes late and reads slowly gets every byte (1 MiB, past the pipe buffer)', async () => {
    const p = fifo('late.json');
    const out = path.join(dir, 'late.out');
    const data = 'x'.repeat(1 << 20) + '\n';
    const reader = spawn('sh', ['-c', `sleep 1; dd if="$0" of="$1" bs=4096 2>/dev/null`, p, out]);
    const done = new Promise((resolve) => reader.on('close', resolve));
    await writeFileAtomic(p, data);
    await done;
    expect(readFileSync(out, 'utf8')).toBe(data);
  });
});

describe('--json /dev/stdout', () => {
  it('works when stdout is a pipe', async () => {
    const r = await deimv2(['detect', EXAMPLE, '-b', 'cpu', '-q', '--json', '/dev/stdout']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).results[0].detections.length).toBeGreaterThan(0);
  });
});
