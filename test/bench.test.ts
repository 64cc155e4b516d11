/**
 * `npm run bench` (bench/run.js) in its quick form: the markdown table, the JSON and the SVG it
 * writes, each marked as a quick run; written to a temporary folder, never into bench/results.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MODEL_DIR, ROOT } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

describe('bench/run.js --quick', () => {
  it('measures Atto on the CPU at batch 1 and 2, prints the table and writes the JSON and the chart', () => {
    const out = tempDir('deimv2-bench-');
    const inTree = () => readdirSync(path.join(ROOT, 'bench', 'results')).sort();
    const before = inTree();
    const stdout = execFileSync(process.execPath, [path.join(ROOT, 'bench/run.js'), '--variants', 'atto', '--backends', 'cpu', '--batch', '2', '--quick', '--skip-breakdown', '--model-dir', MODEL_DIR, '--out', out], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tableRows = stdout.split('\n').filter((l) => l.startsWith('| atto |'));
    expect(tableRows).toHaveLength(2);
    expect(stdout).toMatch(/\| variant \| backend \| precision \| batch \| model FPS \| latency ms median \/ p90 \/ p99 \| runs \| spread \| image FPS \| video FPS \| status \| run \|/);
    expect(tableRows[0]).toMatch(/^\| atto \| cpu \| fp32 \| 1 \| \d+\.\d \| [\d.]+ \/ [\d.]+ \/ [\d.]+ \| 20 \| \d+% \| \d+\.\d \| \d+\.\d \| ok \| quick \|$/);
    expect(tableRows[1]).toMatch(/^\| atto \| cpu \| fp32 \| 2 \| \d+\.\d \| .* \| - \| ok \| quick \|$/);

    expect(inTree()).toEqual(before);
    const files = readdirSync(out);
    const json = files.find((f) => f.endsWith('.json'))!;
    expect(json).toMatch(/^\d{4}-\d{2}-\d{2}-.+-quick\.json$/);
    expect(files).toContain(json.replace(/\.json$/, '.svg'));
    const result = JSON.parse(readFileSync(path.join(out, json), 'utf8'));
    expect(result.machine).toMatchObject({ cores: expect.any(Number), cpu: expect.any(String), onnxruntime: expect.stringMatching(/^1\.30/), node: process.version });
    expect(result.machine.tensorrt).toMatch(/TensorRT/);
    expect(result.run).toBe('quick');
    expect(result.rows).toHaveLength(2);
    expect(result.rows.map((r: { run: string }) => r.run)).toEqual(['quick', 'quick']);
    const [b1, b2] = result.rows;
    expect(b1.model.fps).toBeGreaterThan(0);
    expect(b1.model.latency.medianMs).toBeLessThanOrEqual(b1.model.latency.p90Ms);
    expect(b1.model.latency.p90Ms).toBeLessThanOrEqual(b1.model.latency.p99Ms);
    expect(b1.images).toMatchObject({ images: 50, passes: 1 });
    expect(b1.video.frames).toBeGreaterThan(100);
    expect(b2.video).toBeUndefined();
    expect(b1.ap).toEqual({ ap: 23.8, source: 'paper' });
    const svg = readFileSync(path.join(out, json.replace(/\.json$/, '.svg')), 'utf8');
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('>atto</text>');
    expect(svg).toContain('(quick run)</text>');
    expect(svg).toContain('QUICK RUN (--quick): rough figures');
  });

  it('rejects an unknown variant and an unknown backend', () => {
    const run = (...a: string[]) => {
      try {
        execFileSync(process.execPath, [path.join(ROOT, 'bench/run.js'), ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
        return 'no error';
      } catch (e) {
        return (e as { stderr: string }).stderr;
      }
    };
    expect(run('--variants', 'tiny')).toMatch(/unknown variant "tiny"/);
    expect(run('--backends', 'gpu', '--model-dir', MODEL_DIR)).toMatch(/unknown backend "gpu"/);
  });
});
