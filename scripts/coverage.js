#!/usr/bin/env node
/**
 * `npm run coverage [-- test/some.test.ts ...]`: runs the tests with V8 coverage (@vitest/coverage-v8,
 * mapped back to src/ through dist's source maps) and prints line coverage per folder of src/.
 * The report goes to a temporary folder (printed), never into the repository.
 * Not counted: code that runs only in worker threads or child processes (pool workers, the CLI
 * spawned by tests), which V8 coverage of the test process does not see.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(path.join(os.tmpdir(), 'deimv2-coverage-'));
const vitest = path.join(path.dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const run = spawnSync(process.execPath, [vitest, 'run',
  '--coverage.enabled', '--coverage.provider=v8', '--coverage.include=dist/**/*.js',
  '--coverage.reporter=json-summary', '--coverage.reporter=text-summary', `--coverage.reportsDirectory=${out}`,
  ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });

const summary = JSON.parse(readFileSync(path.join(out, 'coverage-summary.json'), 'utf8'));
const folders = new Map();
for (const [file, s] of Object.entries(summary)) {
  if (file === 'total') continue;
  const rel = path.relative(path.join(root, 'src'), file);
  const folder = path.dirname(rel) === '.' ? 'src/' : `src/${path.dirname(rel)}/`;
  const f = folders.get(folder) ?? { covered: 0, total: 0, files: 0 };
  f.covered += s.lines.covered;
  f.total += s.lines.total;
  f.files++;
  folders.set(folder, f);
}
const pct = (c, t) => (t === 0 ? '100.0' : ((100 * c) / t).toFixed(1));
console.log('\nline coverage per folder');
for (const [folder, f] of [...folders].sort(([a], [b]) => a.localeCompare(b))) {
  console.log(`${folder.padEnd(28)} ${pct(f.covered, f.total).padStart(6)}%  ${String(f.covered).padStart(5)}/${String(f.total).padEnd(5)} lines, ${f.files} file(s)`);
}
const t = summary.total.lines;
console.log(`${'all'.padEnd(28)} ${pct(t.covered, t.total).padStart(6)}%  ${String(t.covered).padStart(5)}/${String(t.total).padEnd(5)} lines`);
console.log(`(full report: ${out})`);
process.exitCode = run.status ?? 1;
