/**
 * Engine build, cache and validation flows on the simulated GPU runtime, through the CLI:
 * `deimv2 build` (prepare, build with progress, validate against the CPU backend), cache hit, miss,
 * stale, corrupt and truncated engines and their rebuild, a cached engine the runtime refuses, and
 * `detect` building its engine through the cache on device 0 and 1.
 * DEIMV2_SIM_RECORDING makes every simulated build replay a recording, so validation passes; without
 * it the engine's outputs are a function of the input and validation fails.
 */
import { readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cocoSubset, detectionsOf, runCli, tempDir } from './helpers/sim.js';

const tmp = tempDir('sim-engine');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const images = cocoSubset(tmp, 4);
const recording = path.join(tmp, 'recording.bin');
const cache = path.join(tmp, 'cache');
const withRecording = { DEIMV2_SIM_RECORDING: recording };
let cpu: unknown[] = [];

beforeAll(async () => {
  const r = await runCli(['build', '--model', 'atto', '--record', images, '--out', path.join(tmp, 'recorded.engine'), '--save-recording', recording, '-q']);
  expect(r.code, r.stderr).toBe(0);
  const out = path.join(tmp, 'cpu.json');
  const c = await runCli(['detect', images, '--backend', 'cpu', '--json', out, '-q'], { DEIMV2_GPU_RUNTIME: undefined });
  expect(c.code, c.stderr).toBe(0);
  cpu = detectionsOf(JSON.parse(readFileSync(out, 'utf8')));
}, 120_000);

const build = (extra: string[] = [], env: Record<string, string | undefined> = withRecording) =>
  runCli(['build', '--model', 'atto', '--out', cache, '--precision', 'fp32', ...extra], env);
const engineFile = () => readdirSync(cache).filter((f) => f.endsWith('.engine')).map((f) => path.join(cache, f));

describe('deimv2 build on the simulated runtime', () => {
  it('validation fails for an engine whose outputs differ from the CPU backend (no recording)', async () => {
    const r = await build([], { DEIMV2_SIM_RECORDING: undefined });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/the TensorRT simulated fp32 engine does not match the CPU backend: .*CPU detection\(s\) missing.*\[ERR_ENGINE_VALIDATION\]/);
    expect(r.stderr).toMatch(/start Building engine \(4 steps\)/);
  });

  it('builds, validates and then reuses (cache miss, then hit)', async () => {
    const first = await build(['--force']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^built .*\.engine \(TensorRT simulated, fp32, batch 1\.\.1, Simulated GPU 0\)\nvalidation: passed: 5\/5 CPU detections matched/);
    const second = await build(['--json']);
    expect(second.code, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ reused: true, gpuName: 'Simulated GPU 0', tensorrtVersion: 'simulated', validation: { passed: true } });
  });

  it('rebuilds a corrupt, a truncated and a stale engine, saying why', async () => {
    const [engine] = engineFile();
    const bytes = readFileSync(engine!);
    bytes[100] ^= 0xff;
    writeFileSync(engine!, bytes);
    const corrupt = await build();
    expect(corrupt.stderr).toMatch(/rebuilding: engine .* sha256 .* differs from its sidecar's/);
    expect(corrupt.stdout).toMatch(/^built /);
    truncateSync(engine!, 1000);
    const truncated = await build();
    expect(truncated.stderr).toMatch(/rebuilding: engine .* has 1000 bytes, its sidecar says \d+ \(truncated or overwritten\)/);
    const sidecar = engine!.replace(/\.engine$/, '.json');
    const meta = JSON.parse(readFileSync(sidecar, 'utf8'));
    writeFileSync(sidecar, JSON.stringify({ ...meta, key: 'x'.repeat(64), tensorrtVersion: '10.13.3' }));
    const stale = await build();
    expect(stale.stderr).toMatch(/rebuilding: engine .* was built for another setup \(tensorrtVersion 10\.13\.3 -> simulated/);
    expect(stale.code, stale.stderr).toBe(0);
  });

  it('detect builds its engine through the cache and equals the CPU backend; a cached engine the runtime refuses is rebuilt once', async () => {
    const env = { ...withRecording, DEIMV2_ENGINE_DIR: cache };
    const out = path.join(tmp, 'cached.json');
    const r = await runCli(['detect', images, '--backend', 'tensorrt', '--precision', 'fp32', '--json', out, '-q'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(detectionsOf(JSON.parse(readFileSync(out, 'utf8')))).toEqual(cpu);
    // Foreign bytes with a matching sidecar pass the size and sha checks; deserialisation refuses them.
    const [engine] = engineFile();
    const garbage = Buffer.alloc(4096, 0x42);
    writeFileSync(engine!, garbage);
    const sidecar = engine!.replace(/\.engine$/, '.json');
    const meta = JSON.parse(readFileSync(sidecar, 'utf8'));
    writeFileSync(sidecar, JSON.stringify({ ...meta, engineBytes: garbage.length, engineSha256: createHash('sha256').update(garbage).digest('hex') }));
    const again = await runCli(['detect', images, '--backend', 'tensorrt', '--precision', 'fp32', '--json', out, '-q'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(detectionsOf(JSON.parse(readFileSync(out, 'utf8')))).toEqual(cpu);
    expect(readFileSync(engine!).subarray(0, 15).toString('latin1')).toBe('DEIMV2SIMENGINE');
  });

  it('--device 1 builds and runs its own engine', async () => {
    const out = path.join(tmp, 'device1.json');
    const r = await runCli(['detect', images, '--backend', 'tensorrt', '--precision', 'fp32', '--device', '1', '--json', out], { ...withRecording, DEIMV2_ENGINE_DIR: cache });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/on Simulated GPU 1 \(device 1\)/);
    expect(detectionsOf(JSON.parse(readFileSync(out, 'utf8')))).toEqual(cpu);
    const bad = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', path.join(tmp, 'recorded.engine'), '--device', '2']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/cudaSetDevice\(2\) failed: cudaErrorInvalidDevice \(the simulated runtime has 2 device\(s\)\)/);
  });
});
