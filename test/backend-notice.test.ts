/**
 * The TensorRT notice: a CPU run does not print why TensorRT is unavailable (a 190-character
 * sentence on every run); `deimv2 info` does, and so does `--backend tensorrt`, in one short line.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { backendAvailability } from '../dist/index.js';
import { ATTO, CLI, EXAMPLE } from './helpers/paths.js';

const trt = backendAvailability().find((b) => b.name === 'tensorrt')!;
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });

describe.skipIf(trt.available)('the TensorRT notice on a machine without TensorRT', () => {
  it('a CPU detect run says only that TensorRT is unavailable and where to read why', () => {
    const r = cli('detect', EXAMPLE, '-m', ATTO, '--threads', '1');
    expect(r.status).toBe(0);
    const header = r.stderr.split('\n')[0]!;
    expect(header).toMatch(/^deimv2: deimv2_hgnetv2_atto_coco\.onnx on cpu|^deimv2: atto on cpu/);
    expect(header).toContain('auto: TensorRT unavailable (deimv2 info says why)');
    expect(r.stderr).not.toContain(trt.detail);
    expect(r.stderr).not.toMatch(/TENSORRT_ROOT|build:native/);
  });

  it('deimv2 info gives the reason, in one line of at most 160 characters', () => {
    const r = cli('info');
    expect(r.status).toBe(0);
    const line = r.stdout.split('\n').find((l) => /^\s*tensorrt\s+unavailable/.test(l))!;
    expect(line).toContain(trt.detail);
    expect(trt.detail).toMatch(/^TensorRT unavailable: /);
    if (/no native addon/.test(trt.detail)) expect(trt.detail.length).toBeLessThanOrEqual(120);
    expect(line.length).toBeLessThanOrEqual(160);
  });

  it('--backend tensorrt fails with the reason in one short line', () => {
    const r = cli('detect', EXAMPLE, '-m', ATTO, '--backend', 'tensorrt');
    expect(r.status).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines.length).toBe(1);
    expect(lines[0]).toContain(trt.detail);
    expect(lines[0]!.length).toBeLessThanOrEqual(160);
  });
});
