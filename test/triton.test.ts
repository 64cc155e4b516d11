/**
 * Triton model repositories: every field of config.pbtxt against the real IO (the shared Atto and
 * Femto graphs as onnxruntime reads them; engine IO objects shaped like the addon's `tensors` and
 * `profile`), and config.pbtxt parsed strictly as protobuf text format by protoc against the
 * fields of Triton's model_config.proto (test/fixtures/triton/model_config_subset.proto).
 */
import { execFile } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { prepareModel } from '../src/prepare/index.js';
import { configText, defaultModelName, tritonConfig, tritonReleasesFor, writeTritonOnnx, writeTritonPlan, type EngineIo, type TritonTensor } from '../src/triton/index.js';
import { isDeimError } from '../src/errors.js';
import { ATTO, CLI, FEMTO, MODEL_DIR, ROOT } from './helpers/paths.js';
import { HAS_PROTOC, NO_PROTOC, TRITON_TYPES, parseConfig } from './helpers/triton-config.js';
import { tempDir } from './helpers/images.js';

const run = promisify(execFile);
if (!HAS_PROTOC) console.warn(`test/triton.test.ts: ${NO_PROTOC}`);


/** Engine IO exactly as the addon's engine object reports it (binding/engine.cc Tensors/Profile). */
function engineIo(side: number, k: number, precision: 'fp32' | 'fp16', profile: EngineIo['profile']): EngineIo {
  const f = precision === 'fp16' ? 'float16' : 'float32';
  return {
    tensors: [
      { name: 'images', input: true, dtype: f, shape: [-1, 3, side, side] },
      { name: 'orig_target_sizes', input: true, dtype: 'int64', shape: [-1, 2] },
      { name: 'labels', input: false, dtype: 'int64', shape: [-1, k] },
      { name: 'boxes', input: false, dtype: f, shape: [-1, k, 4] },
      { name: 'scores', input: false, dtype: f, shape: [-1, k] },
    ],
    profile,
  };
}

function fakeEngine(dir: string, file = 'deimv2_hgnetv2_femto_coco.fp16.b16.0123456789abcdef.engine'): { engine: string; bytes: Buffer; sha256: string } {
  const bytes = randomBytes(100_000);
  const engine = path.join(dir, file);
  writeFileSync(engine, bytes);
  return { engine, bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** No half-written or temporary file left anywhere under the folder. */
function hiddenFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => path.basename(f).startsWith('.'));
}

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (e) {
    if (isDeimError(e)) return e.code;
    throw e;
  }
  return 'resolved';
}

describe('Triton ONNX form (deimv2 prepare --triton-repo)', () => {
  for (const [variant, file, side] of [['atto', ATTO, 320], ['femto', FEMTO, 416]] as const) {
    it(`${variant}: config.pbtxt matches the IO onnxruntime reads from the written model.onnx, and the model runs`, async () => {
      const repo = tempDir();
      const prepared = await prepareModel(file);
      const r = await writeTritonOnnx({ repo, onnx: prepared.bytes, model: file, inputs: [file], instances: 3 });
      expect(r.name).toBe(`deimv2_${variant}`);
      expect(r.model).toBe(path.join(repo, `deimv2_${variant}`, '1', 'model.onnx'));
      expect(readdirSync(path.join(repo, r.name)).sort()).toEqual(['1', 'README.txt', 'config.pbtxt']);
      expect(readFileSync(r.model).equals(Buffer.from(prepared.bytes))).toBe(true);
      expect(readFileSync(r.config, 'utf8')).toBe(configText(r.modelConfig));

      // The oracle: onnxruntime's own view of the file Triton will load.
      const session = await ort.InferenceSession.create(r.model);
      type Meta = { name: string; type: string; shape: Array<number | string> };
      const meta = session as unknown as { inputMetadata: Meta[]; outputMetadata: Meta[] };
      const expected = (list: Meta[]) => list.map((m) => ({
        name: m.name, data_type: TRITON_TYPES[m.type], dims: m.shape.slice(1).map((d) => (typeof d === 'number' && d > 0 ? d : -1)),
      }));
      for (const m of [...meta.inputMetadata, ...meta.outputMetadata]) expect(typeof m.shape[0], `${m.name} batch axis`).toBe('string');
      const want = {
        name: `deimv2_${variant}`, platform: 'onnxruntime_onnx', max_batch_size: 8,
        input: expected(meta.inputMetadata), output: expected(meta.outputMetadata),
        dynamic_batching: { preferred_batch_size: [8], max_queue_delay_microseconds: 500 },
        instance_group: [{ name: '', kind: 'KIND_CPU', count: 3, gpus: [] }],
      };
      expect(want.input.map((t) => t.name)).toEqual(['images', 'orig_target_sizes']);
      expect(want.input[0]).toEqual({ name: 'images', data_type: 'TYPE_FP32', dims: [3, side, side] });
      expect(want.input[1]).toEqual({ name: 'orig_target_sizes', data_type: 'TYPE_INT64', dims: [2] });
      expect(r.modelConfig).toEqual({ ...want, instance_group: [{ kind: 'KIND_CPU', count: 3 }] });
      if (HAS_PROTOC) {
        const decoded = parseConfig(readFileSync(r.config, 'utf8'));
        expect(decoded).toEqual({ ...want, optimization: null });
      }

      // A batch of two through the written model: output shapes fit the config's dims.
      const n = 2;
      const out = await session.run({
        images: new ort.Tensor('float32', new Float32Array(n * 3 * side * side).fill(0.5), [n, 3, side, side]),
        orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([640n, 480n, 500n, 375n]), [n, 2]),
      });
      for (const t of want.output) {
        const dims = out[t.name]!.dims;
        expect(dims[0]).toBe(n);
        expect(dims.length - 1).toBe(t.dims.length);
        t.dims.forEach((d, i) => { if (d !== -1) expect(dims[i + 1]).toBe(d); });
      }
      await session.release();

      const readme = readFileSync(r.readme, 'utf8');
      expect(readme).toContain('onnxruntime');
      expect(readme).toContain('KIND_CPU');
      expect(readme).toContain(`images: float32 [?,3,${side},${side}]`);
      expect(hiddenFiles(repo)).toEqual([]);
    });
  }

  it('CLI: deimv2 prepare --triton-repo writes the repository without --out', async () => {
    const repo = tempDir();
    const { stdout } = await run(process.execPath, [CLI, 'prepare', '--model', 'atto', '--model-dir', MODEL_DIR, '--triton-repo', repo, '--instances', '2'], { cwd: ROOT });
    const model = path.join(repo, 'deimv2_atto', '1', 'model.onnx');
    expect(stdout).toContain(`triton: ${model}`);
    expect(existsSync(model)).toBe(true);
    const text = readFileSync(path.join(repo, 'deimv2_atto', 'config.pbtxt'), 'utf8');
    expect(text).toMatch(/platform: "onnxruntime_onnx"/);
    expect(text).toMatch(/kind: KIND_CPU\n {4}count: 2/);
    expect(readFileSync(path.join(repo, 'deimv2_atto', 'README.txt'), 'utf8')).toContain(path.basename(ATTO));
    if (HAS_PROTOC) expect(parseConfig(text).instance_group).toEqual([{ name: '', kind: 'KIND_CPU', count: 2, gpus: [] }]);
  });
});

describe('Triton TensorRT form (deimv2 build --triton-repo)', () => {
  const cases = [
    { precision: 'fp32', side: 416, k: 300, profile: { min: 1, opt: 8, max: 16 }, preferred: [8, 16], name: 'deimv2_femto', type: 'TYPE_FP32' },
    { precision: 'fp16', side: 320, k: 300, profile: { min: 1, opt: 4, max: 4 }, preferred: [4], name: 'deimv2_atto', type: 'TYPE_FP16' },
  ] as const;
  for (const c of cases) {
    it(`${c.precision} engine IO: every field of config.pbtxt, the plan's bytes and README.txt`, async () => {
      const dir = tempDir();
      const repo = path.join(dir, 'repo');
      const { engine, bytes, sha256 } = fakeEngine(dir, `${c.name.replace('deimv2_', 'deimv2_hgnetv2_')}_coco.${c.precision}.b${c.profile.max}.0123456789abcdef.engine`);
      const io = engineIo(c.side, c.k, c.precision, c.profile);
      const r = await writeTritonPlan({
        repo, engine, io, instances: 2,
        build: { tensorrtVersion: '10.13.3.9', precision: c.precision, gpuName: 'NVIDIA H200', computeCapability: '9.0', device: 1, engineSha256: sha256, sourceModel: '/models/x.onnx' },
      });
      expect(r.name).toBe(c.name);
      expect(readdirSync(path.join(repo, c.name)).sort()).toEqual(['1', 'README.txt', 'config.pbtxt']);
      expect(readdirSync(path.join(repo, c.name, '1'))).toEqual(['model.plan']);
      expect(readFileSync(r.model).equals(bytes)).toBe(true);
      expect(readFileSync(engine).equals(bytes)).toBe(true);

      // Expected from the IO objects: batch axis removed, data types mapped.
      const tensor = (name: string) => {
        const t = io.tensors.find((x) => x.name === name)!;
        return { name, data_type: TRITON_TYPES[t.dtype], dims: t.shape.slice(1) };
      };
      const want = {
        name: c.name, platform: 'tensorrt_plan', max_batch_size: c.profile.max,
        input: ['images', 'orig_target_sizes'].map(tensor), output: ['labels', 'boxes', 'scores'].map(tensor),
        dynamic_batching: { preferred_batch_size: [...c.preferred], max_queue_delay_microseconds: 500 },
        instance_group: [{ kind: 'KIND_GPU', count: 2, gpus: [1] }],
        optimization: { cuda: { graphs: true } },
      };
      expect(want.input[0]).toEqual({ name: 'images', data_type: c.type, dims: [3, c.side, c.side] });
      expect(want.input[1]).toEqual({ name: 'orig_target_sizes', data_type: 'TYPE_INT64', dims: [2] });
      expect(want.output).toEqual([
        { name: 'labels', data_type: 'TYPE_INT64', dims: [c.k] },
        { name: 'boxes', data_type: c.type, dims: [c.k, 4] },
        { name: 'scores', data_type: c.type, dims: [c.k] },
      ]);
      expect(r.modelConfig).toEqual(want);
      if (HAS_PROTOC) {
        expect(parseConfig(readFileSync(r.config, 'utf8'))).toEqual({ ...want, instance_group: [{ name: '', kind: 'KIND_GPU', count: 2, gpus: [1] }] });
      }
      const readme = readFileSync(r.readme, 'utf8');
      expect(readme).toContain('TensorRT version: 10.13.3');
      expect(readme).toContain('releases 25.11, 25.12, 26.01, 26.02');
      expect(readme).toContain('NVIDIA H200 (compute capability 9.0)');
      expect(readme).toContain(`images: ${c.precision === 'fp16' ? 'float16' : 'float32'} [N,3,${c.side},${c.side}]`);
      expect(hiddenFiles(dir)).toEqual([]);
    });
  }

  it('reads the build facts from the engine sidecar JSON; a TensorRT no table lists points to the support matrix', async () => {
    const dir = tempDir();
    const { engine, sha256 } = fakeEngine(dir);
    writeFileSync(engine.replace(/\.engine$/, '.json'), JSON.stringify({ tensorrtVersion: '10.99.1.2', precision: 'fp16', device: 3, engineSha256: sha256, gpuName: 'NVIDIA L4', computeCapability: '8.9' }));
    const r = await writeTritonPlan({ repo: path.join(dir, 'repo'), engine, io: engineIo(416, 300, 'fp32', { min: 1, opt: 1, max: 1 }) });
    expect(r.name).toBe('deimv2_femto');
    expect(r.modelConfig.instance_group).toEqual([{ kind: 'KIND_GPU', count: 1, gpus: [3] }]);
    expect(r.modelConfig.dynamic_batching).toEqual({ preferred_batch_size: [1], max_queue_delay_microseconds: 500 });
    const readme = readFileSync(r.readme, 'utf8');
    expect(readme).toContain('TensorRT version: 10.99.1');
    expect(readme).toContain('lists no release with TensorRT 10.99.1');
    expect(readme).toContain('https://docs.nvidia.com/deeplearning/frameworks/support-matrix/index.html');
  });

  it('refuses a plan whose bytes differ from the sha256 of its sidecar, leaving nothing behind', async () => {
    const dir = tempDir();
    const { engine } = fakeEngine(dir);
    const repo = path.join(dir, 'repo');
    expect(await code(writeTritonPlan({ repo, engine, io: engineIo(416, 300, 'fp32', { min: 1, opt: 1, max: 4 }), build: { tensorrtVersion: '10.13.3.9', engineSha256: '0'.repeat(64) } }))).toBe('ERR_ENGINE_INVALID');
    expect(existsSync(path.join(repo, 'deimv2_femto', '1', 'model.plan'))).toBe(false);
    expect(existsSync(path.join(repo, 'deimv2_femto', 'config.pbtxt'))).toBe(false);
    expect(hiddenFiles(dir)).toEqual([]);
  });

  it('refuses a batch larger than the profile, IO that is not DEIMv2, and mixed batch axes', async () => {
    const dir = tempDir();
    const { engine } = fakeEngine(dir);
    const repo = path.join(dir, 'repo');
    const build = { tensorrtVersion: '10.13.3.9' };
    const io = engineIo(416, 300, 'fp32', { min: 1, opt: 2, max: 4 });
    expect(await code(writeTritonPlan({ repo, engine, io, build, maxBatchSize: 8 }))).toBe('ERR_INVALID_ARGUMENT');
    const noScores = { ...io, tensors: io.tensors.filter((t) => t.name !== 'scores') };
    expect(await code(writeTritonPlan({ repo, engine, io: noScores, build }))).toBe('ERR_MODEL_NOT_DEIMV2');
    const mixed = { ...io, tensors: io.tensors.map((t) => (t.name === 'labels' ? { ...t, shape: [4, 300] } : t)) };
    expect(await code(writeTritonPlan({ repo, engine, io: mixed, build }))).toBe('ERR_MODEL_INVALID');
    expect(existsSync(repo)).toBe(false);
  });

  it('a fixed-batch engine gets max_batch_size 0, full dims and no dynamic batcher', () => {
    const fixed: TritonTensor[] = engineIo(320, 300, 'fp32', { min: 2, opt: 2, max: 2 }).tensors.map((t) => ({ ...t, shape: [2, ...t.shape.slice(1)] }));
    const config = tritonConfig(fixed, { name: 'fixed', platform: 'tensorrt_plan', maxBatchSize: 2, kind: 'gpu', cudaGraphs: true }, 'fixed.engine');
    expect(config.max_batch_size).toBe(0);
    expect(config.input[0]!.dims).toEqual([2, 3, 320, 320]);
    expect(config.dynamic_batching).toBeUndefined();
    if (HAS_PROTOC) expect(parseConfig(configText(config)).dynamic_batching).toBeNull();
  });

  it('without IO objects it opens the engine with the addon, and says so when it cannot', async () => {
    const dir = tempDir();
    const { engine } = fakeEngine(dir);
    expect(['ERR_BACKEND_UNAVAILABLE', 'ERR_ENGINE_INVALID']).toContain(await code(writeTritonPlan({ repo: path.join(dir, 'repo'), engine, build: { tensorrtVersion: '10.13.3.9' } })));
  });
});

describe('Triton names and repository folders', () => {
  it('default names come from the variant or the file', () => {
    expect(defaultModelName('femto')).toBe('deimv2_femto');
    expect(defaultModelName('ATTO')).toBe('deimv2_atto');
    expect(defaultModelName(FEMTO)).toBe('deimv2_femto');
    expect(defaultModelName('/x/deimv2_dinov3_s_coco.fp16.b8.0123.engine')).toBe('deimv2_s');
    expect(defaultModelName('exports/my detector.onnx')).toBe('my_detector');
    expect(defaultModelName('.onnx')).toBe('deimv2_model');
  });

  it('refuses names Triton would reject or skip', async () => {
    const repo = tempDir();
    for (const name of ['', '.', '..', '.hidden', 'a/b', 'a\\b', ' padded', 'has space', '-x', 'x'.repeat(201)]) {
      expect(await code(writeTritonOnnx({ repo, onnx: ATTO, name })), JSON.stringify(name)).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(readdirSync(repo)).toEqual([]);
  });

  it('refuses a repository (or model folder) that is a file', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'not-a-folder');
    writeFileSync(file, 'x');
    expect(await code(writeTritonOnnx({ repo: file, onnx: ATTO }))).toBe('ERR_INVALID_ARGUMENT');
    writeFileSync(path.join(dir, 'deimv2_atto'), 'x');
    expect(await code(writeTritonOnnx({ repo: dir, onnx: ATTO }))).toBe('ERR_INVALID_ARGUMENT');
    expect(readFileSync(file, 'utf8')).toBe('x');
  });

  it('never writes over its input, and refuses to mix two model forms in one folder', async () => {
    const repo = tempDir();
    const first = await writeTritonOnnx({ repo, onnx: ATTO });
    const before = readFileSync(first.model);
    // The repository's own model.onnx as the input of the next write.
    expect(await code(writeTritonOnnx({ repo, onnx: first.model, name: 'deimv2_atto' }))).toBe('ERR_INVALID_ARGUMENT');
    expect(readFileSync(first.model).equals(before)).toBe(true);
    // Same form again: replaced atomically, nothing left over.
    await writeTritonOnnx({ repo, onnx: ATTO, instances: 2 });
    expect(readFileSync(first.config, 'utf8')).toMatch(/count: 2/);
    // A plan into the ONNX model's folder is refused.
    const { engine } = fakeEngine(repo, 'deimv2_hgnetv2_atto_coco.fp32.b1.0123456789abcdef.engine');
    expect(await code(writeTritonPlan({ repo, engine, io: engineIo(320, 300, 'fp32', { min: 1, opt: 1, max: 1 }), build: { tensorrtVersion: '10.13.3.9' } }))).toBe('ERR_OUTPUT_WRITE');
    const other = await writeTritonPlan({ repo, engine, name: 'deimv2_atto_trt', io: engineIo(320, 300, 'fp32', { min: 1, opt: 1, max: 1 }), build: { tensorrtVersion: '10.13.3.9' } });
    expect(other.modelConfig.platform).toBe('tensorrt_plan');
    // Another version folder would be served instead of 1: said, not hidden.
    mkdirSync(path.join(repo, 'deimv2_atto', '2'));
    expect((await writeTritonOnnx({ repo, onnx: ATTO })).warnings[0]).toMatch(/version folder\(s\) 2/);
    rmSync(path.join(repo, 'deimv2_atto', '2'), { recursive: true });
    expect(hiddenFiles(repo)).toEqual([]);
  });

  it.skipIf(!HAS_PROTOC)(`tensor names are quoted as protobuf text-format strings (quotes, backslashes, UTF-8)${HAS_PROTOC ? '' : ` (skipped: ${NO_PROTOC})`}`, () => {
    const odd = 'we"ird\\ naïve\tname';
    const tensors = [...engineIo(320, 300, 'fp32', { min: 1, opt: 1, max: 1 }).tensors, { name: odd, input: false, dtype: 'float32', shape: [-1, 7] }];
    const decoded = parseConfig(configText(tritonConfig(tensors, { name: 'odd', platform: 'tensorrt_plan', maxBatchSize: 1, kind: 'gpu' }, 'odd')));
    expect(decoded.output.map((o) => o.name)).toEqual(['labels', 'boxes', 'scores', odd]);
  });

  it('knows which Triton releases ship a TensorRT version', () => {
    expect(tritonReleasesFor('10.8.0.43')).toEqual(['25.01', '25.02']);
    expect(tritonReleasesFor('10.14.1')).toEqual(['26.03', '26.04', '26.05', '26.06', '26.07']);
    expect(tritonReleasesFor('8.6.1.6')).toEqual([]);
  });
});

describe('deimv2 build --triton-repo (checked before any build)', () => {
  it('lists the options and refuses a bad target before looking for TensorRT', async () => {
    const help = await run(process.execPath, [CLI, 'build', '--help'], { cwd: ROOT });
    for (const flag of ['--triton-repo <dir>', '--triton-name <name>', '--instances <n>']) expect(help.stdout).toContain(flag);
    const dir = tempDir();
    const file = path.join(dir, 'file');
    writeFileSync(file, '');
    for (const [args, message] of [
      [['--triton-repo', file], /is a file, not a folder/],
      [['--triton-repo', dir, '--triton-name', '../up'], /not a usable Triton model name/],
      [['--triton-repo', dir, '--instances', '0'], /between 1 and 1024 for the Triton instances/],
    ] as const) {
      const r = await run(process.execPath, [CLI, 'build', '--model', 'atto', ...args], { cwd: ROOT }).then(() => ({ code: 0, stderr: '' }), (e: { code: number; stderr: string }) => e);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain('[ERR_INVALID_ARGUMENT]');
    }
  });
});
