/**
 * Fault injection on the simulated GPU runtime: DEIMV2_GPU_FAULT=<call>:<n> fails the n-th call of
 * alloc, pinned-alloc, copy, kernel, enqueue, graph-capture, deserialize or build. Each must give a
 * JS error naming the call (never a crash), return every slot and byte, and leave the Detector
 * working (a later create or detect succeeds). Each fault runs in its own process (the counters are
 * per process), driving the public API: Detector and the addon's functions.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTO, ROOT } from './helpers/paths.js';
import { cocoSubset, runCli, runNode, tempDir } from './helpers/sim.js';

const tmp = tempDir('sim-faults');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const images = cocoSubset(tmp, 4);
const files = readdirSync(images).sort().map((f) => path.join(images, f));
const engine = path.join(tmp, 'atto.engine');
const script = path.join(tmp, 'fault-child.mjs');
const dist = (p: string) => pathToFileURL(path.join(ROOT, 'dist', p)).href;

writeFileSync(script, `
const [engine, onnx, scratch, ...files] = process.argv.slice(2);
const { Detector } = await import(${JSON.stringify(dist('index.js'))});
const { loadAddon } = await import(${JSON.stringify(dist('backends/tensorrt/native.js'))});
const addon = loadAddon().addon;
const log = [];
let graphs;
const attempt = async (what, fn) => {
  try { await fn(); log.push({ what, ok: true }); }
  catch (e) { log.push({ what, ok: false, code: e.code, message: String(e.message), cause: e.cause ? String(e.cause.message) : undefined }); }
};
await attempt('build', () => addon.buildEngine({ onnx, engine: scratch, precision: 'fp32', maxBatch: 2 }));
const graphsFirst = process.env.FAULT_GRAPHS_FIRST === '1';
if (graphsFirst) await graphRun();
for (let round = 0; round < 3; round++) {
  let detector;
  await attempt('create', async () => { detector = await Detector.create({ model: 'atto', backend: 'tensorrt', engine, batch: 2 }); });
  if (!detector) continue;
  // detectBatch gives a failed chunk's images their failure in place (the other chunk goes on).
  for (let i = 0; i < 3; i++) await attempt('detect', async () => {
    const failed = (await detector.detectBatch(files)).find((r) => 'error' in r);
    if (failed) throw Object.assign(new Error(failed.error.message), { code: failed.error.code });
  });
  await detector.close();
}
if (!graphsFirst) await graphRun();
async function graphRun() { await attempt('graphs', async () => {
  // An engine without a recording: outputs are a function of the (zero) input.
  if (!(await import('node:fs')).existsSync(scratch)) await addon.buildEngine({ onnx, engine: scratch, precision: 'fp32', maxBatch: 2 });
  const e = await addon.openEngine({ engine: scratch, contexts: 1, cudaGraphs: true });
  try {
    for (let i = 0; i < 3; i++) await e.infer(0, 1);
    graphs = e.cudaGraphs[0];
  } finally {
    await e.close();
  }
}); }
for (let i = 0; i < 50 && addon.simulator().engines > 0; i++) await new Promise((r) => setTimeout(r, 20));
process.stdout.write(JSON.stringify({ log, graphs, stats: addon.simulator() }));
`);

beforeAll(async () => {
  const r = await runCli(['build', '--model', 'atto', '--record', images, '--out', engine, '--max-batch', '2', '-q']);
  expect(r.code, r.stderr).toBe(0);
}, 120_000);

interface Outcome {
  log: { what: string; ok: boolean; code?: string; message?: string; cause?: string }[];
  graphs: { enabled: boolean; batch: number; failure: string } | undefined;
  stats: { deviceBytes: number; pinnedBytes: number; streams: number; events: number; graphs: number; contexts: number; engines: number; violations: string[] };
}

async function inject(fault: string, env: Record<string, string> = {}): Promise<Outcome> {
  const r = await runNode(script, [engine, ATTO, path.join(tmp, `${fault.replace(':', '-')}.engine`), ...files], { DEIMV2_GPU_FAULT: fault, ...env });
  expect(r.signal, r.stderr).toBeNull();
  expect(r.code, r.stderr).toBe(0);
  const outcome = JSON.parse(r.stdout) as Outcome;
  // Every slot and byte returned, teardown by the rules.
  expect(outcome.stats).toMatchObject({ deviceBytes: 0, pinnedBytes: 0, streams: 0, events: 0, graphs: 0, contexts: 0, engines: 0, violations: [] });
  return outcome;
}

const failures = (o: Outcome) => o.log.filter((l) => !l.ok);

describe('DEIMV2_GPU_FAULT: an injected failure is a JS error naming the call, and the Detector keeps working', () => {
  const cases: [fault: string, where: string, call: string][] = [
    ['alloc:3', 'create', 'alloc'],            // device memory of the second tensor of slot 0, at open
    ['alloc:13', 'detect', 'alloc'],           // the kernel's table buffer, grown at the first GPU-preprocessed run
    ['pinned-alloc:4', 'create', 'pinned-alloc'],
    ['copy:3', 'detect', 'copy'],
    ['kernel:2', 'detect', 'kernel'],
    // The first enqueue is always a plain one (a slot's first run); a later one can be the one a
    // graph capture makes, whose failure only gives graphs up (the run goes on), so which call fails
    // would depend on how the two slots interleave.
    ['enqueue:1', 'detect', 'enqueue'],
    ['deserialize:1', 'create', 'deserialize'],
    ['build:1', 'build', 'build'],
  ];
  for (const [fault, where, call] of cases) {
    it(`${fault}: ${where} fails naming "${call}", later work succeeds, nothing leaks`, async () => {
      const o = await inject(fault);
      const failed = failures(o);
      expect(failed, JSON.stringify(o.log)).toHaveLength(1);
      expect(failed[0]!.what).toBe(where);
      expect(`${failed[0]!.message} ${failed[0]!.cause ?? ''}`).toContain(`simulated ${call} failed: fault injected by DEIMV2_GPU_FAULT=${fault}`);
      const after = o.log.slice(o.log.indexOf(failed[0]!) + 1);
      expect(after.some((l) => l.what === 'detect' && l.ok)).toBe(true);
    });
  }

  it('graph-capture:1: capture is given up with the reason, inference goes on without graphs', async () => {
    const o = await inject('graph-capture:1', { FAULT_GRAPHS_FIRST: '1' });
    expect(failures(o)).toEqual([]);
    expect(o.graphs).toMatchObject({ enabled: false, batch: -1 });
    expect(o.graphs!.failure).toMatch(/cudaStreamBeginCapture failed: simulated graph-capture failed: fault injected/);
  });

  it('a folder run goes on past a failed model call: those images fail with the error, the others are written', async () => {
    const out = path.join(tmp, 'kernel-fault.json');
    const r = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', engine, '--batch', '2', '--json', out], { DEIMV2_GPU_FAULT: 'kernel:1' });
    expect(r.signal).toBeNull();
    expect(r.code, r.stderr).toBe(1);
    const doc = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ file: string; error?: string; detections?: unknown[] }> };
    expect(doc.results.map((e) => e.file)).toEqual(files);
    const failed = doc.results.filter((e) => e.error !== undefined);
    expect(failed).toHaveLength(2);
    for (const e of failed) expect(e.error).toMatch(/simulated kernel failed: fault injected by DEIMV2_GPU_FAULT=kernel:1/);
    expect(doc.results.filter((e) => Array.isArray(e.detections))).toHaveLength(2);
    expect(r.stderr).toMatch(/2 of 4 file\(s\) failed/);
  });

  it('the CLI reports an injected fault as an error, never a crash', async () => {
    const r = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', engine], { DEIMV2_GPU_FAULT: 'deserialize:1' });
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/simulated deserialize failed: fault injected by DEIMV2_GPU_FAULT=deserialize:1/);
  });
});
