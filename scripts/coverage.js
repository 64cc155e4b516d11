#!/usr/bin/env node
/**
 * `npm run coverage [-- test/some.test.ts ...]`: runs the tests with V8 coverage and prints line
 * coverage per folder of src/.
 *
 * Counted: every Node process of the run and their worker threads — the vitest test processes, the
 * CLI and helper scripts the tests spawn, the decode/tensor/infer pool workers. The run sets
 * NODE_V8_COVERAGE, which every child inherits (each writes its coverage on exit), and
 * DEIMV2_COVERAGE=1, which makes vitest load dist/ natively and write the coverage of each test process
 * (vitest.config.ts, scripts/coverage-setup.js). c8 maps the coverage of dist/*.js back to src/
 * through dist's source maps. Processes killed by a signal write nothing.
 * The report goes to a temporary folder (printed), never into the repository; the raw coverage is
 * removed once the report is made.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
const { Report } = require('c8');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = mkdtempSync(path.join(os.tmpdir(), 'deimv2-coverage-'));
const raw = path.join(out, 'v8');
const kept = path.join(out, 'v8-dist');
mkdirSync(kept);
// Children that tests run as another user (setpriv, output-safety.test.ts) write their coverage too.
mkdirSync(raw);
chmodSync(out, 0o711);
chmodSync(raw, 0o1777);
const vitest = path.join(path.dirname(require.resolve('vitest/package.json')), 'vitest.mjs');
const run = spawnSync(process.execPath, [vitest, 'run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, NODE_V8_COVERAGE: raw, DEIMV2_COVERAGE: '1' },
});

// Keep only the scripts of dist/ whose source V8 saw is the file on disk (the whole-script range
// covers exactly its length), so that c8 maps offsets of the right text.
const dist = pathToFileURL(path.join(root, 'dist')).href + '/';
const lengths = new Map();
const lengthOf = (url) => {
  if (!lengths.has(url)) {
    try { lengths.set(url, readFileSync(fileURLToPath(url), 'utf8').length); } catch { lengths.set(url, -1); }
  }
  return lengths.get(url);
};
let processes = 0, dropped = 0;
for (const name of readdirSync(raw, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json'))) {
  let cov;
  try { cov = JSON.parse(readFileSync(path.join(raw, name.name), 'utf8')); } catch { continue; }
  const result = cov.result.filter((s) => {
    if (!s.url.startsWith(dist)) return false;
    const ok = s.functions[0]?.ranges[0]?.startOffset === 0 && s.functions[0].ranges[0].endOffset === lengthOf(s.url);
    if (!ok) dropped++;
    return ok;
  });
  if (result.length === 0) continue;
  processes++;
  writeFileSync(path.join(kept, name.name), JSON.stringify({ result }));
}

// Files of types only compile to `export {};` and are never loaded: nothing in them can run, so they
// are left out instead of counting every line of their source as uncovered.
const typeOnly = [];
const walk = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, e.name);
    if (e.isDirectory()) walk(file);
    else if (e.name.endsWith('.js') && readFileSync(file, 'utf8').replace(/\/\/# sourceMappingURL=.*/, '').replace(/\s+/g, '') === 'export{};') {
      typeOnly.push(path.relative(root, file));
    }
  }
};
walk(path.join(root, 'dist'));

const report = new Report({
  tempDirectory: kept,
  reportsDirectory: path.join(out, 'report'),
  reporter: ['json-summary', 'json', 'text'],
  reporterOptions: { text: { file: 'coverage.txt' } },
  include: ['dist/**/*.js'],
  exclude: typeOnly,
  extension: ['.js'],
  excludeAfterRemap: false,
  resolve: '',
  src: [root],
  all: true,
});
const cwd = process.cwd();
process.chdir(root);
await report.run();
process.chdir(cwd);
// The raw coverage of a whole run is hundreds of MB: only the report stays.
rmSync(raw, { recursive: true, force: true });
rmSync(kept, { recursive: true, force: true });

const summary = JSON.parse(readFileSync(path.join(out, 'report', 'coverage-summary.json'), 'utf8'));
const folders = new Map();
for (const [file, s] of Object.entries(summary)) {
  if (file === 'total') continue;
  const rel = path.relative(path.join(root, 'src'), path.resolve(root, file));
  const folder = path.dirname(rel) === '.' ? 'src/' : `src/${path.dirname(rel)}/`;
  const f = folders.get(folder) ?? { covered: 0, total: 0, files: 0 };
  f.covered += s.lines.covered;
  f.total += s.lines.total;
  f.files++;
  folders.set(folder, f);
}
const pct = (c, t) => (t === 0 ? '100.0' : ((100 * c) / t).toFixed(1));
console.log(`\nline coverage per folder (${processes} process/thread coverage file(s)${dropped ? `, ${dropped} script(s) whose text changed on disk left out` : ''})`);
for (const [folder, f] of [...folders].sort(([a], [b]) => a.localeCompare(b))) {
  console.log(`${folder.padEnd(28)} ${pct(f.covered, f.total).padStart(6)}%  ${String(f.covered).padStart(5)}/${String(f.total).padEnd(5)} lines, ${f.files} file(s)`);
}
const t = summary.total.lines;
console.log(`${'all'.padEnd(28)} ${pct(t.covered, t.total).padStart(6)}%  ${String(t.covered).padStart(5)}/${String(t.total).padEnd(5)} lines`);
console.log(`(full report: ${path.join(out, 'report')}: coverage.txt per file with uncovered lines, coverage-final.json)`);
process.exitCode = run.status ?? 1;
