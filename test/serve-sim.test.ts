/**
 * `deimv2 serve` on the simulated TensorRT runtime: frames of several streams go out together,
 * as one batched engine call (batch sizes above 1 in the /metrics histogram). The engine is
 * recorded on the clip's own frames (ffmpeg's rgb24, as the decoder gives them), so every frame
 * of every stream is an input it knows; any other input would fail loudly.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SHARED } from './helpers/paths.js';
import { startServe, until, type TestService } from './helpers/serve.js';
import { runCli, SIM_ENV, tempDir } from './helpers/sim.js';

const tmp = tempDir('serve-sim');
const clip = path.join(tmp, 'clip12.mp4');
const engine = path.join(tmp, 'atto.sim.engine');
let service: TestService | undefined;

beforeAll(async () => {
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', path.join(SHARED, 'videos', 'car-detection.mp4'), '-frames:v', '12', '-map', '0:v:0', '-c', 'copy', clip]);
  const frames = path.join(tmp, 'frames');
  mkdirSync(frames);
  execFileSync('ffmpeg', ['-v', 'error', '-i', clip, '-pix_fmt', 'rgb24', path.join(frames, '%03d.png')]);
  const built = await runCli(['build', '--model', 'atto', '--record', frames, '--out', engine, '--max-batch', '4', '-q']);
  expect(built.code, built.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await service?.stop('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});

it('frames of several streams go out as one batched engine call (batch sizes > 1 in /metrics)', async () => {
  const config = path.join(tmp, 'streams.json');
  writeFileSync(config, JSON.stringify({ streams: ['a', 'b', 'c'].map((id) => ({ id, source: clip, lines: ['0,250,768,250:gate'] })) }));
  service = await startServe(['--config', config, '--allow-dir', tmp, '--backend', 'tensorrt', '--engine', engine, '--batch', '4', '--batch-timeout-ms', '200'], SIM_ENV);
  expect(service.log()).toMatch(/atto on tensorrt \(simulated\).*batch 4/);
  const all = await until('the three file streams ended', async () => {
    const s = (await service!.call('GET', '/v1/streams')).json.streams as Array<{ state: string; frames: number; dropped: number; lastError?: string }>;
    return s.every((x) => x.state === 'ended') && s;
  }, 60_000);
  for (const s of all) expect(s).toMatchObject({ frames: 12, dropped: 0 });
  expect(all.every((s) => s.lastError === undefined)).toBe(true);
  const metrics = (await service.call('GET', '/metrics')).text;
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)![1]);
  const calls = value('deimv2_inference_batch_size_count');
  const ones = value('deimv2_inference_batch_size_bucket\\{le="1"\\}');
  expect(value('deimv2_inference_batch_size_sum')).toBe(36);
  // 36 frames in fewer calls than frames: most calls carried frames of several streams.
  expect(calls).toBeLessThan(36);
  expect(calls - ones).toBeGreaterThan(0);
  expect(value('deimv2_inference_batch_size_bucket\\{le="4"\\}')).toBe(calls);
  const exit = await service.stop('SIGTERM');
  expect(exit, service.log()).toEqual({ code: 0, signal: null });
}, 120_000);
