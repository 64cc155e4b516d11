/**
 * The TensorRT path end to end through the CLI on the simulated GPU runtime (binding/sim/): a
 * recorded engine must give exactly the CPU backend's results (same files, same detections in the
 * same order, equal boxes and scores) for stretch and letterbox, batch 1 and 8, GPU preprocessing
 * on and off, CUDA graphs on and off. A preprocessing difference on the TensorRT path would be an
 * input the engine has not recorded, which fails loudly.
 * GPU preprocessing and CUDA graphs are switched with the CLI options --gpu-preprocess / --cuda-graphs.
 */
import { copyFileSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cocoSubset, detectionsOf, runCli, tempDir } from './helpers/sim.js';

const tmp = tempDir('sim-cli');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const images = cocoSubset(tmp, 12);
const engines: Record<string, string> = {};
const cpu: Record<string, unknown[]> = {};

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

beforeAll(async () => {
  for (const resize of ['stretch', 'letterbox'] as const) {
    engines[resize] = path.join(tmp, `atto.${resize}.engine`);
    const built = await runCli(['build', '--model', 'atto', '--record', images, '--out', engines[resize]!, '--max-batch', '8', '--resize', resize, '-q']);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toMatch(/recorded 13 image\(s\) into .* simulated runtime/);
    const out = path.join(tmp, `cpu.${resize}.json`);
    const r = await runCli(['detect', images, '--backend', 'cpu', '--resize', resize, '--json', out, '-q'], { DEIMV2_GPU_RUNTIME: undefined });
    expect(r.code, r.stderr).toBe(0);
    cpu[resize] = detectionsOf(readJson(out));
  }
}, 300_000);

describe('deimv2 detect --backend tensorrt on the simulated runtime equals --backend cpu', () => {
  for (const resize of ['stretch', 'letterbox'] as const) {
    for (const batch of [1, 8]) {
      for (const pre of ['on', 'off']) {
        for (const graphs of ['on', 'off']) {
          it(`${resize}, batch ${batch}, GPU preprocessing ${pre}, CUDA graphs ${graphs}`, async () => {
            const out = path.join(tmp, `trt.${resize}.${batch}.${pre}.${graphs}.json`);
            const r = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', engines[resize]!, '--resize', resize, '--batch', String(batch),
              '--gpu-preprocess', pre, '--cuda-graphs', graphs, '--json', out]);
            expect(r.code, r.stderr).toBe(0);
            expect(r.stderr).toMatch(/on tensorrt \(simulated\) \(TensorRT simulated engine/);
            expect(r.stderr).toContain(pre === 'on' ? ', GPU preprocessing' : ', CPU preprocessing');
            expect(r.stderr.includes(', no CUDA graphs')).toBe(graphs === 'off');
            expect(readJson(out).backend).toBe('tensorrt (simulated)');
            const got = detectionsOf(readJson(out));
            expect(got).toHaveLength(12);
            expect(got).toEqual(cpu[resize]);
            expect(JSON.stringify(got)).toBe(JSON.stringify(cpu[resize]));
          });
        }
      }
    }
  }
});

describe('the simulated runtime is explicit and strict', () => {
  it('falls back to CPU preprocessing when the kernel has no image for the GPU, with the same results', async () => {
    const out = path.join(tmp, 'nokernel.json');
    const r = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', engines.stretch!, '--batch', '8', '--json', out, '-q'], { DEIMV2_SIM_NO_KERNEL: '1' });
    expect(r.code, r.stderr).toBe(0);
    expect(detectionsOf(readJson(out))).toEqual(cpu.stretch);
  });

  it('deimv2 info says tensorrt (simulated)', async () => {
    const r = await runCli(['info']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/tensorrt\s+available\s+tensorrt \(simulated\): the simulated GPU runtime \(DEIMV2_GPU_RUNTIME=simulated\)/);
  });

  it('is never chosen silently: without DEIMV2_GPU_RUNTIME the build has no GPU backend here', async () => {
    const r = await runCli(['info'], { DEIMV2_GPU_RUNTIME: undefined });
    expect(r.stdout).not.toMatch(/simulated/);
    const bad = await runCli(['info'], { DEIMV2_GPU_RUNTIME: 'cuda' });
    expect(bad.stdout).toMatch(/DEIMV2_GPU_RUNTIME must be "tensorrt" or "simulated", got "cuda"/);
  });

  it('build --record refuses to run without the simulated runtime', async () => {
    const r = await runCli(['build', '--model', 'atto', '--record', images, '--out', path.join(tmp, 'x.engine')], { DEIMV2_GPU_RUNTIME: undefined });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/TensorRT unavailable|DEIMV2_GPU_RUNTIME=simulated/);
  });

  it('an input the engine has not recorded fails with an error that says so (letterbox images on a stretch engine)', async () => {
    // One image: with a folder, the CLI may report the ERR_CLOSED of the other chunks instead (it
    // closes the detector when the first chunk fails), which is the CLI's business, not the runtime's.
    const one = path.join(images, readdirSync(images).sort()[0]!);
    const r = await runCli(['detect', one, '--backend', 'tensorrt', '--engine', engines.stretch!, '--resize', 'letterbox', '--json', path.join(tmp, 'bad.json')]);
    expect(r.code).not.toBe(0);
    expect(r.signal).toBeNull();
    expect(r.stderr).toMatch(/has an input this engine has not recorded \(13 recorded; input hash [0-9a-f]{16}\)/);
  });

  it('a truncated or foreign engine file is a clear error at deserialisation', async () => {
    const truncated = path.join(tmp, 'truncated.engine');
    copyFileSync(engines.stretch!, truncated);
    truncateSync(truncated, 5000);
    const t = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', truncated]);
    expect(t.code).not.toBe(0);
    expect(t.stderr).toMatch(/engine file .*truncated\.engine: the header says \d+ payload bytes but the file has \d+ \(truncated\)/);
    const foreign = path.join(tmp, 'foreign.engine');
    writeFileSync(foreign, Buffer.alloc(10_000, 0x42));
    const f = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', foreign]);
    expect(f.code).not.toBe(0);
    expect(f.stderr).toMatch(/is not a simulated engine \(no DEIMV2SIMENGINE header/);
    const flipped = path.join(tmp, 'flipped.engine');
    const bytes = readFileSync(engines.stretch!);
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(flipped, bytes);
    const c = await runCli(['detect', images, '--backend', 'tensorrt', '--engine', flipped]);
    expect(c.stderr).toMatch(/checksum mismatch \(the file is corrupt\)/);
  });
});
