/**
 * Stop signals for commands that have nothing to finish (src/signals.ts, the fallback in
 * cli/main.ts): on Ctrl-C or SIGTERM they remove their temporary files and die of the signal.
 * `deimv2 track` on a long detection file writes its output under a temporary name meanwhile;
 * before, a SIGTERM left that file behind. (detect's own graceful stop: output-safety.test.ts.)
 */
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

/** 40,000 frames of 30 boxes drifting right: several seconds of tracking. */
function longDetections(file: string): void {
  const lines: string[] = [];
  for (let f = 0; f < 40_000; f++) {
    const detections = Array.from({ length: 30 }, (_, i) => {
      const x = (i * 60 + f) % 1800;
      const y = (i * 37) % 1000;
      return { label: 'person', classId: 0, categoryId: 1, score: 0.9, box: [x, y, x + 40, y + 80] };
    });
    lines.push(JSON.stringify({ frame: f, pts: f / 25, detections }));
  }
  writeFileSync(file, lines.join('\n') + '\n');
}

describe('a stop signal to a command without a stop of its own', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: deimv2 track removes its temporary output and dies of the signal`, async () => {
      const dir = tempDir('deimv2-signals-');
      const input = path.join(dir, 'in.jsonl');
      longDetections(input);
      const child = spawn(process.execPath, [CLI, 'track', '-d', input, '--out', path.join(dir, 'tracks.jsonl'), '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      const closed = new Promise<number | string | null>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));
      const partial = () => readdirSync(dir).some((f) => f.endsWith('.partial'));
      for (let i = 0; i < 400 && !partial() && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 25));
      expect(partial(), `the run wrote under a temporary name (${stderr})`).toBe(true);
      child.kill(signal);
      expect(await closed, stderr).toBe(signal);
      expect(readdirSync(dir)).toEqual(['in.jsonl']);
    });
  }
});
