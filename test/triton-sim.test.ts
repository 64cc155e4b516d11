/**
 * `deimv2 build --triton-repo` end to end on the simulated GPU runtime (DEIMV2_GPU_RUNTIME=simulated),
 * whose engines report their real IO (read from the ONNX graph) through the addon's openEngine: a
 * recorded engine (--record) and an engine of the cache (built, then reused) each become
 * DIR/NAME/1/model.plan (the engine's bytes), config.pbtxt (every field checked against the IO the
 * addon reports for the written plan, and parsed strictly by protoc against the fields of Triton's
 * model_config.proto) and README.txt. Bad targets and output clashes are refused before any build.
 */
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cocoSubset, runCli, tempDir, useSimulatedRuntime } from './helpers/sim.js';
import { ATTO } from './helpers/paths.js';
import { HAS_PROTOC, NO_PROTOC, TRITON_TYPES, parseConfig, type TensorConfig } from './helpers/triton-config.js';

useSimulatedRuntime(); // before anything loads the addon
const { loadAddon } = await import('../dist/backends/tensorrt/native.js');
const addon = loadAddon().addon!;

if (!HAS_PROTOC) console.warn(`test/triton-sim.test.ts: ${NO_PROTOC}`);

const tmp = tempDir('triton-sim');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const images = cocoSubset(tmp, 3);
const recording = path.join(tmp, 'recording.bin');
const recorded = path.join(tmp, 'atto.recorded.engine');
const cache = path.join(tmp, 'cache');
const withRecording = { DEIMV2_SIM_RECORDING: recording };

const hiddenFiles = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => path.basename(f).startsWith('.'));

interface Expected { name: string; instances: number; device: number }

/**
 * Checks DIR/NAME against the engine file: layout, plan bytes, and config.pbtxt against the IO the
 * addon reports when it opens the written plan. Returns the README's text.
 */
async function checkRepository(repo: string, engine: string, want: Expected): Promise<{ readme: string; io: { tensors: Array<{ name: string; input: boolean; dtype: string; shape: number[] }>; profile: { min: number; opt: number; max: number } } }> {
  const modelDir = path.join(repo, want.name);
  expect(readdirSync(modelDir).sort()).toEqual(['1', 'README.txt', 'config.pbtxt']);
  expect(readdirSync(path.join(modelDir, '1'))).toEqual(['model.plan']);
  const plan = path.join(modelDir, '1', 'model.plan');
  expect(readFileSync(plan).equals(readFileSync(engine)), 'model.plan has the engine\'s bytes').toBe(true);

  const opened = await addon.openEngine({ engine: plan, device: want.device, contexts: 1, cudaGraphs: false });
  const io = { tensors: opened.tensors.map((t) => ({ name: t.name, input: t.input, dtype: t.dtype, shape: [...t.shape] })), profile: { ...opened.profile } };
  await opened.close();
  expect(io.tensors.map((t) => t.name).sort()).toEqual(['boxes', 'images', 'labels', 'orig_target_sizes', 'scores']);
  for (const t of io.tensors) expect(t.shape[0], `${t.name}: dynamic batch axis`).toBe(-1);

  const text = readFileSync(path.join(modelDir, 'config.pbtxt'), 'utf8');
  expect(text).toMatch(/^name: ".*"\nplatform: "tensorrt_plan"\nmax_batch_size: \d+\n/);
  // Each tensor exactly once, in the input or output list, with the engine's type and dims minus the batch axis.
  const fromEngine = (input: boolean) => io.tensors.filter((t) => t.input === input)
    .map((t) => ({ name: t.name, data_type: TRITON_TYPES[t.dtype]!, dims: t.shape.slice(1) }));
  const byName = (a: TensorConfig, b: TensorConfig) => a.name.localeCompare(b.name);
  const expected = {
    name: want.name,
    platform: 'tensorrt_plan',
    max_batch_size: io.profile.max,
    dynamic_batching: { preferred_batch_size: [...new Set([io.profile.opt, io.profile.max])].sort((a, b) => a - b), max_queue_delay_microseconds: 500 },
    instance_group: [{ name: '', kind: 'KIND_GPU', count: want.instances, gpus: [want.device] }],
    optimization: { cuda: { graphs: true } },
  };
  if (HAS_PROTOC) {
    const decoded = parseConfig(text);
    const { input, output, ...rest } = decoded;
    expect(rest).toEqual(expected);
    expect([...input].sort(byName)).toEqual(fromEngine(true).sort(byName));
    expect([...output].sort(byName)).toEqual(fromEngine(false).sort(byName));
    expect(input.map((t) => t.name)).toEqual(['images', 'orig_target_sizes']);
    expect(output.map((t) => t.name)).toEqual(['labels', 'boxes', 'scores']);
    expect(input[0]).toEqual({ name: 'images', data_type: 'TYPE_FP32', dims: [3, 320, 320] });
  } else {
    // Without protoc: the values as written, read with plain patterns.
    expect(text).toContain(`name: "${want.name}"\n`);
    expect(text).toContain(`max_batch_size: ${io.profile.max}\n`);
    for (const t of [...fromEngine(true), ...fromEngine(false)]) {
      expect(text).toContain(`name: "${t.name}"\n    data_type: ${t.data_type}\n    dims: [ ${t.dims.join(', ')} ]\n`);
    }
    expect(text).toContain(`kind: KIND_GPU\n    count: ${want.instances}\n    gpus: [ ${want.device} ]\n`);
  }
  expect(hiddenFiles(repo)).toEqual([]);
  const readme = readFileSync(path.join(modelDir, 'README.txt'), 'utf8');
  expect(readme).toContain(`${want.name}: DEIMv2 atto object detector as a TensorRT plan`);
  expect(readme).toContain('NOT SERVABLE: the plan is an engine of the simulated GPU runtime');
  expect(readme).toContain(`(engine ${path.basename(engine)})`);
  expect(readme).toContain(`on Simulated GPU ${want.device}`);
  for (const t of io.tensors) expect(readme).toContain(`  ${t.name}: ${t.dtype} [${t.shape.map((d) => (d === -1 ? 'N' : d)).join(',')}]\n`);
  return { readme, io };
}

describe('deimv2 build --triton-repo on the simulated GPU runtime', () => {
  it('--record: the recorded engine becomes DIR/NAME/1/model.plan with a config.pbtxt of its real IO', async () => {
    const repo = path.join(tmp, 'repo-recorded');
    const r = await runCli(['build', '--model', 'atto', '--record', images, '--out', recorded, '--max-batch', '4', '--device', '1',
      '--triton-repo', repo, '--triton-name', 'atto_sim', '--instances', '2', '--save-recording', recording]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`recorded 4 image(s) into ${recorded}`);
    expect(r.stdout).toContain(`triton: ${path.join(repo, 'atto_sim', '1', 'model.plan')}\n`);
    expect(r.stdout).toMatch(/warning: the plan is an engine of the simulated GPU runtime .*no Triton loads it/);
    const { io, readme } = await checkRepository(repo, recorded, { name: 'atto_sim', instances: 2, device: 1 });
    expect(io.profile).toEqual({ min: 1, opt: 4, max: 4 });
    expect(readme).toContain(`from ${ATTO} by deimv2`);
    expect(readme).toContain('fp32, batch 1..4 (opt 4)');
  });

  it('the engine cache: built, then reused, each time written as the same repository', async () => {
    const build = (repo: string) => runCli(['build', '--model', 'atto', '--out', cache, '--precision', 'fp32', '--max-batch', '4', '--opt-batch', '2',
      '--triton-repo', repo, '--json'], withRecording);
    const first = await build(path.join(tmp, 'repo-built'));
    expect(first.code, first.stderr).toBe(0);
    const built = JSON.parse(first.stdout);
    expect(built).toMatchObject({ reused: false, validation: { passed: true }, triton: { model: path.join(tmp, 'repo-built', 'deimv2_atto', '1', 'model.plan') } });
    const a = await checkRepository(path.join(tmp, 'repo-built'), built.engine, { name: 'deimv2_atto', instances: 1, device: 0 });
    expect(a.io.profile).toEqual({ min: 1, opt: 2, max: 4 });
    expect(a.readme).toContain('Built with TensorRT simulated, fp32, batch 1..4 (opt 2), on Simulated GPU 0 (compute capability');

    const second = await build(path.join(tmp, 'repo-reused'));
    expect(second.code, second.stderr).toBe(0);
    const reused = JSON.parse(second.stdout);
    expect(reused).toMatchObject({ reused: true, engine: built.engine });
    await checkRepository(path.join(tmp, 'repo-reused'), reused.engine, { name: 'deimv2_atto', instances: 1, device: 0 });
    for (const file of ['config.pbtxt', 'README.txt', '1/model.plan']) {
      expect(readFileSync(path.join(tmp, 'repo-reused', 'deimv2_atto', file)).equals(readFileSync(path.join(tmp, 'repo-built', 'deimv2_atto', file))), file).toBe(true);
    }
  });
});

describe('deimv2 build --triton-repo refuses bad targets and clashes before any build', () => {
  const cases: Array<{ what: string; args: () => string[]; message: RegExp; code: string; untouched?: () => string[] }> = [
    { what: 'a bad model name', args: () => ['--record', images, '--out', path.join(tmp, 'x.engine'), '--triton-repo', path.join(tmp, 'r1'), '--triton-name', '../up'], message: /"\.\.\/up" is not a usable Triton model name/, code: 'ERR_INVALID_ARGUMENT' },
    { what: '--triton-name without --triton-repo', args: () => ['--record', images, '--out', path.join(tmp, 'x.engine'), '--triton-name', 'n'], message: /--triton-name needs --triton-repo/, code: 'ERR_INVALID_ARGUMENT' },
    { what: 'a repository that is a file', args: () => ['--out', cache, '--precision', 'fp32', '--triton-repo', path.join(tmp, 'plain-file')], message: /the Triton model repository .*plain-file is a file, not a folder/, code: 'ERR_INVALID_ARGUMENT' },
    { what: 'the engine --out writes (--record)', args: () => ['--record', images, '--out', path.join(tmp, 'same.engine'), '--triton-repo', path.join(tmp, 'same.engine')], message: /--triton-repo .*same\.engine and --out .*same\.engine are the same file/, code: 'ERR_OUTPUT_CLASH' },
    { what: 'an existing engine file', args: () => ['--record', images, '--out', path.join(tmp, 'x.engine'), '--triton-repo', recorded], message: /the Triton model repository .*atto\.recorded\.engine is a file, not a folder/, code: 'ERR_INVALID_ARGUMENT', untouched: () => [recorded] },
    { what: 'a cached engine', args: () => ['--out', cache, '--precision', 'fp32', '--max-batch', '4', '--opt-batch', '2', '--triton-repo', cachedEngine()], message: /is a file, not a folder/, code: 'ERR_INVALID_ARGUMENT', untouched: () => [cachedEngine()] },
    { what: 'a plan that is the engine itself', args: () => ['--record', images, '--out', path.join(tmp, 'r2', 'n', '1', 'model.plan'), '--triton-repo', path.join(tmp, 'r2'), '--triton-name', 'n'], message: /--triton-repo .*model\.plan and --out .*model\.plan are the same file/, code: 'ERR_OUTPUT_CLASH' },
    { what: 'the model file (an input)', args: () => ['--model', modelLink(), '--record', images, '--out', path.join(tmp, 'x.engine'), '--triton-repo', modelLink()], message: /is a file, not a folder/, code: 'ERR_INVALID_ARGUMENT', untouched: () => [ATTO] },
    { what: 'an image of --record (an input) as the model folder', args: () => ['--record', images, '--out', path.join(tmp, 'x.engine'), '--triton-repo', images, '--triton-name', firstImage()], message: /the model folder .* is a file, not a folder/, code: 'ERR_INVALID_ARGUMENT' },
    { what: 'an image of --record (an input) as the engine', args: () => ['--record', images, '--out', path.join(images, firstImage()), '--triton-repo', path.join(tmp, 'r3')], message: /--out .* would overwrite the input/, code: 'ERR_OUTPUT_CLASH' },
    { what: 'the recording as config.pbtxt', args: () => ['--record', images, '--out', path.join(tmp, 'x.engine'), '--triton-repo', path.join(tmp, 'r4'), '--triton-name', 'n', '--save-recording', path.join(tmp, 'r4', 'n', 'config.pbtxt')], message: /are the same file/, code: 'ERR_OUTPUT_CLASH' },
    { what: 'a model folder holding the ONNX form', args: () => ['--record', images, '--out', path.join(tmp, 'x.engine'), '--triton-repo', path.join(tmp, 'onnx-repo')], message: /config\.pbtxt already holds a "onnxruntime_onnx" model, not "tensorrt_plan"/, code: 'ERR_OUTPUT_WRITE' },
  ];
  const cachedEngine = () => readdirSync(cache).filter((f) => f.endsWith('.engine')).map((f) => path.join(cache, f))[0]!;
  const modelLink = () => path.join(tmp, 'link', path.basename(ATTO));
  const firstImage = () => readdirSync(images).sort()[0]!;

  beforeAll(() => {
    writeFileSync(path.join(tmp, 'plain-file'), 'x');
    mkdirSync(path.join(tmp, 'link'), { recursive: true });
    symlinkSync(ATTO, modelLink());
    mkdirSync(path.join(tmp, 'onnx-repo', 'deimv2_atto'), { recursive: true });
    writeFileSync(path.join(tmp, 'onnx-repo', 'deimv2_atto', 'config.pbtxt'), 'name: "deimv2_atto"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n');
  });

  it.each(cases.map((c) => [c.what, c] as const))('%s', async (_what, c) => {
    const before = readdirSync(tmp).sort();
    const watched = (c.untouched?.() ?? []).map((f) => [f, readFileSync(f)] as const);
    const r = await runCli(['build', '--model', 'atto', ...c.args()], withRecording);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(c.message);
    expect(r.stderr).toContain(`[${c.code}]`);
    // Before any build: no phase lines, nothing new in the folder, inputs as they were.
    expect(r.stderr).not.toMatch(/Parsing ONNX|prepare:|build:/);
    expect(r.stdout).toBe('');
    expect(readdirSync(tmp).sort()).toEqual(before);
    for (const [file, bytes] of watched) expect(readFileSync(file).equals(bytes), file).toBe(true);
    expect(readdirSync(images).map((f) => lstatSync(path.join(images, f)).isSymbolicLink())).toEqual([true, true, true]);
    expect(existsSync(path.join(tmp, 'x.engine'))).toBe(false);
  });
});
