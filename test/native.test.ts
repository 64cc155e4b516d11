/**
 * What runs without a GPU: the addon built WITHOUT TensorRT (argument checks and the reason), the
 * engine cache (keys, sidecars, stale/corrupt detection), validation figures, FindTensorRT on fake
 * install trees, and the install step that never fails.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, writeFileSync, rmSync, truncateSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkEngine, compareDetections, engineCacheKey, enginePaths, readSidecar, sha256File, tensorrtAvailability, writeSidecar,
  type EngineKeyParts, type EngineSidecar, type NativeAddon,
} from '../dist/backends/tensorrt/index.js';

const root = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-native-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Loaded at collection time (skipIf needs to know how it was built); built first when there is none.
function loadOrBuildAddon(): NativeAddon {
  const release = path.join(root, 'build', 'Release');
  if (!existsSync(release) || !readdirSync(release).some((f) => f.endsWith('.node'))) {
    execFileSync(process.execPath, [createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js'), 'compile'], { cwd: root, stdio: 'ignore' });
  }
  return createRequire(import.meta.url)('node-gyp-build')(root) as NativeAddon;
}
const addon = loadOrBuildAddon();

const hasTensorRt = () => addon.buildInfo().tensorrt;

describe('native addon arguments', () => {
  it('reports how it was built', () => {
    const info = addon.buildInfo();
    expect(info.napiVersion).toBe(8);
    expect(typeof info.tensorrt).toBe('boolean');
    if (!info.tensorrt) expect(info.reason).toMatch(/NvInfer\.h not found|older than 10\.6|not found/);
  });

  const good = { onnx: 'model.onnx', engine: path.join(tmp, 'x.engine'), precision: 'fp16' as const };
  const cases: [string, unknown, unknown, RegExp][] = [
    ['options not an object', 'model.onnx', TypeError, /Expected an object for options but received 'model.onnx' of type string/],
    ['missing onnx', { ...good, onnx: undefined }, TypeError, /Expected a string for onnx but received undefined of type undefined/],
    ['empty engine', { ...good, engine: '' }, RangeError, /Expected a non-empty string for engine/],
    ['precision', { ...good, precision: 'int8' }, RangeError, /Expected 'fp16' or 'fp32' for precision but received 'int8'/],
    ['precision type', { ...good, precision: 16 }, TypeError, /for precision but received 16 of type number/],
    ['fractional batch', { ...good, maxBatch: 2.5 }, TypeError, /Expected an integer for maxBatch but received 2.5/],
    ['batch too large', { ...good, maxBatch: 5000 }, RangeError, /Expected an integer between 1 and 4096 for maxBatch/],
    ['min > max', { ...good, minBatch: 8, maxBatch: 4 }, RangeError, /Expected an integer >= minBatch \(8\) for maxBatch/],
    ['opt outside', { ...good, minBatch: 2, optBatch: 1, maxBatch: 4 }, RangeError, /between minBatch and maxBatch \(2..4\) for optBatch/],
    ['device', { ...good, device: -1 }, RangeError, /between 0 and 255 for device/],
    ['stronglyTyped', { ...good, stronglyTyped: 'yes' }, TypeError, /Expected a boolean for stronglyTyped/],
    ['timingCache', { ...good, timingCache: 3 }, TypeError, /Expected a string for timingCache/],
  ];
  for (const [name, options, type, message] of cases) {
    it(`buildEngine rejects ${name} before anything else`, () => {
      let thrown: unknown;
      try { addon.buildEngine(options as never); } catch (e) { thrown = e; }
      expect(thrown).toBeInstanceOf(type as never);
      expect((thrown as Error).message).toMatch(message);
    });
  }

  it('buildEngine rejects a progress callback that is not a function', () => {
    expect(() => addon.buildEngine(good, 'log' as never)).toThrow(/Expected a function for onProgress but received 'log'/);
  });

  it('openEngine checks its options', () => {
    expect(() => addon.openEngine({} as never)).toThrow(/Expected a string for engine but received undefined/);
    expect(() => addon.openEngine({ engine: 'a.engine', contexts: 0 })).toThrow(/between 1 and 16 for contexts but received 0/);
    expect(() => addon.openEngine({ engine: 'a.engine', contexts: 17 })).toThrow(RangeError);
  });

  it.skipIf(hasTensorRt())('valid calls say why TensorRT is unavailable (addon built without TensorRT)', () => {
    for (const call of [() => addon.buildEngine(good), () => addon.openEngine({ engine: 'a.engine' }), () => addon.cudaDevices(), () => addon.tensorrtVersion()]) {
      let thrown: unknown;
      try { call(); } catch (e) { thrown = e; }
      expect((thrown as { code?: string }).code).toBe('ERR_TENSORRT_UNAVAILABLE');
      expect((thrown as Error).message).toMatch(/^TensorRT unavailable: the native addon was built without TensorRT \(.+; set TENSORRT_ROOT and run npm run build:native\)$/);
    }
  });

  it.skipIf(hasTensorRt())('tensorrtAvailability() reports the reason', () => {
    const a = tensorrtAvailability();
    expect(a).toMatchObject({ name: 'tensorrt', available: false });
    expect(a.detail).toMatch(/^TensorRT unavailable: the native addon was built without TensorRT \(/);
  });
});

const parts: EngineKeyParts = {
  onnxSha256: 'a'.repeat(64), gpuName: 'NVIDIA GeForce RTX 4090', computeCapability: '8.9',
  tensorrtVersion: '10.13.3', precision: 'fp16', profile: { min: 1, opt: 8, max: 16 },
};

describe('engine cache', () => {
  it('keys change with every part', () => {
    const base = engineCacheKey(parts);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(engineCacheKey({ ...parts })).toBe(base);
    const variants: EngineKeyParts[] = [
      { ...parts, onnxSha256: 'b'.repeat(64) }, { ...parts, gpuName: 'NVIDIA A100' }, { ...parts, computeCapability: '8.0' },
      { ...parts, tensorrtVersion: '11.1.0' }, { ...parts, precision: 'fp32' }, { ...parts, profile: { min: 1, opt: 16, max: 16 } },
    ];
    const keys = new Set(variants.map(engineCacheKey));
    expect(keys.size).toBe(variants.length);
    expect(keys.has(base)).toBe(false);
    const p = enginePaths('/e', 'deimv2_hgnetv2_femto_coco', parts);
    expect(p.engine).toBe(`/e/deimv2_hgnetv2_femto_coco.fp16.b16.${base.slice(0, 16)}.engine`);
    expect(p.sidecar).toBe(`/e/deimv2_hgnetv2_femto_coco.fp16.b16.${base.slice(0, 16)}.json`);
  });

  async function makeEngine(name: string, validated = true): Promise<{ engine: string; sidecar: string }> {
    const dir = path.join(tmp, name);
    mkdirSync(dir, { recursive: true });
    const p = enginePaths(dir, 'm', parts);
    writeFileSync(p.engine, Buffer.alloc(4096, 7));
    const sidecar: EngineSidecar = {
      format: 1, key: p.key, ...parts, engineBytes: 4096, engineSha256: await sha256File(p.engine), sourceModel: 'm.onnx',
      builtAt: new Date(0).toISOString(), buildMs: 1, device: 0,
      ...(validated ? { validation: { passed: true, images: 1, referenceBoxes: 3, matched: 3, missed: 0, extra: 0, maxScoreDelta: 0.01, meanScoreDelta: 0.005, minIoU: 0.98, threshold: 0.4, message: 'ok' } } : {}),
    };
    await writeSidecar(p.sidecar, sidecar);
    return p;
  }

  it('accepts an intact, validated engine and round-trips its sidecar', async () => {
    const p = await makeEngine('ok');
    const check = await checkEngine(p.engine, parts);
    expect(check.status).toBe('ok');
    expect((await readSidecar(p.sidecar))?.gpuName).toBe(parts.gpuName);
  });

  it('reports a missing engine', async () => {
    expect((await checkEngine(path.join(tmp, 'none.engine'), parts)).status).toBe('missing');
  });

  it('detects a truncated engine by its size', async () => {
    const p = await makeEngine('truncated');
    truncateSync(p.engine, 1000);
    const check = await checkEngine(p.engine, parts);
    expect(check).toMatchObject({ status: 'corrupt' });
    expect((check as { reason: string }).reason).toMatch(/has 1000 bytes, its sidecar says 4096 \(truncated/);
  });

  it('detects a corrupt engine of the right size by its sha256', async () => {
    const p = await makeEngine('flipped');
    writeFileSync(p.engine, Buffer.alloc(4096, 8));
    expect(await checkEngine(p.engine, parts)).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/sha256 .* differs/) });
  });

  it('calls an engine from another GPU or TensorRT stale, naming what changed', async () => {
    const p = await makeEngine('stale');
    const check = await checkEngine(p.engine, { ...parts, gpuName: 'NVIDIA A100', tensorrtVersion: '11.1.0' });
    expect(check.status).toBe('stale');
    expect((check as { reason: string }).reason).toMatch(/gpuName NVIDIA GeForce RTX 4090 -> NVIDIA A100, tensorrtVersion 10.13.3 -> 11.1.0/);
  });

  it('treats a missing or malformed sidecar as corrupt, and an unvalidated engine as such', async () => {
    const p = await makeEngine('sidecar');
    writeFileSync(p.sidecar, '{"key": 1');
    expect(await checkEngine(p.engine, parts)).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/not valid JSON/) });
    writeFileSync(p.sidecar, '{"key": "x"}');
    expect(await checkEngine(p.engine, parts)).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/lacks the string field "onnxSha256"/) });
    rmSync(p.sidecar);
    expect(await checkEngine(p.engine, parts)).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/has no sidecar/) });
    const u = await makeEngine('unvalidated', false);
    expect(await checkEngine(u.engine, parts)).toMatchObject({ status: 'unvalidated' });
    expect((await checkEngine(u.engine, parts, false)).status).toBe('ok');
  });
});

describe('validation figures', () => {
  const person = (score: number, x = 10) => ({ classId: 0, score, box: [x, 10, x + 100, 210] as [number, number, number, number] });
  it('passes matching detections and reports the deltas', () => {
    const f = compareDetections([[person(0.9), person(0.6, 300)]], [[person(0.91), person(0.58, 302)]], { threshold: 0.4, precision: 'fp16' });
    expect(f).toMatchObject({ passed: true, referenceBoxes: 2, matched: 2, missed: 0, extra: 0 });
    expect(f.maxScoreDelta).toBeCloseTo(0.02, 5);
  });
  it('fails on a missing box, an extra box, and a score drift beyond the precision tolerance', () => {
    expect(compareDetections([[person(0.9)]], [[]], { threshold: 0.4, precision: 'fp16' })).toMatchObject({ passed: false, missed: 1 });
    expect(compareDetections([[]], [[person(0.9)]], { threshold: 0.4, precision: 'fp16' })).toMatchObject({ passed: false, extra: 1 });
    const drift = compareDetections([[person(0.9)]], [[person(0.85)]], { threshold: 0.4, precision: 'fp32' });
    expect(drift.passed).toBe(false);
    expect(drift.message).toMatch(/score delta 0.050 > 0.02/);
    // A box at the threshold may flip without failing the engine.
    expect(compareDetections([[person(0.41)]], [[]], { threshold: 0.4, precision: 'fp32' }).passed).toBe(true);
  });
});

describe('FindTensorRT on fake install trees', () => {
  function fakeTree(name: string, version: string, style: 'trt10' | 'trt11', withLibs = true): string {
    const dir = path.join(tmp, name);
    mkdirSync(path.join(dir, 'include'), { recursive: true });
    mkdirSync(path.join(dir, 'lib'), { recursive: true });
    const [major, minor, patch] = version.split('.');
    const header = style === 'trt11'
      ? `#define TRT_MAJOR_ENTERPRISE ${major}\n#define TRT_MINOR_ENTERPRISE ${minor}\n#define TRT_PATCH_ENTERPRISE ${patch}\n#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE\n#define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE\n#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE\n`
      : `#define NV_TENSORRT_MAJOR ${major}\n#define NV_TENSORRT_MINOR ${minor}\n#define NV_TENSORRT_PATCH ${patch}\n`;
    writeFileSync(path.join(dir, 'include', 'NvInferVersion.h'), header);
    writeFileSync(path.join(dir, 'include', 'NvInfer.h'), '');
    writeFileSync(path.join(dir, 'include', 'NvOnnxParser.h'), '');
    if (withLibs) for (const lib of ['libnvinfer.so', 'libnvonnxparser.so']) writeFileSync(path.join(dir, 'lib', lib), '');
    return dir;
  }

  function findTensorRt(trtRoot: string): string {
    const project = path.join(tmp, `probe-${path.basename(trtRoot)}`);
    mkdirSync(project, { recursive: true });
    writeFileSync(path.join(project, 'CMakeLists.txt'), [
      'cmake_minimum_required(VERSION 3.18)', 'project(probe NONE)',
      `list(APPEND CMAKE_MODULE_PATH "${path.join(root, 'cmake')}")`, 'find_package(TensorRT)',
      'message(STATUS "RESULT found=${TensorRT_FOUND} version=${TensorRT_VERSION} include=${TensorRT_INCLUDE_DIR} reason=${TensorRT_NOT_FOUND_REASON}")',
    ].join('\n'));
    const r = spawnSync('cmake', ['-S', project, '-B', path.join(project, 'build'), `-DTENSORRT_ROOT=${trtRoot}`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return /RESULT (.*)/.exec(r.stdout)![1]!;
  }

  it('finds TensorRT 11 (TRT_MAJOR_ENTERPRISE spelling) under TENSORRT_ROOT', () => {
    const dir = fakeTree('trt11', '11.1.0', 'trt11');
    expect(findTensorRt(dir)).toBe(`found=TRUE version=11.1.0 include=${dir}/include reason=`);
  });

  it('finds TensorRT 10 (NV_TENSORRT_MAJOR spelling)', () => {
    expect(findTensorRt(fakeTree('trt10', '10.13.3', 'trt10'))).toMatch(/^found=TRUE version=10\.13\.3 /);
  });

  it('refuses TensorRT older than 10.6 and says why', () => {
    expect(findTensorRt(fakeTree('trt103', '10.3.0', 'trt10'))).toMatch(/found=FALSE version=10\.3\.0 .* reason=TensorRT 10\.3\.0 at .* is older than 10\.6/);
  });

  it('says which library is missing', () => {
    expect(findTensorRt(fakeTree('nolibs', '10.13.3', 'trt10', false))).toMatch(/found=FALSE .*reason=libnvinfer not found for the TensorRT 10\.13\.3 headers/);
  });

  it('configures the addon WITH TensorRT against a fake tree when the CUDA toolkit is present', () => {
    const hasCuda = existsSync('/usr/local/cuda/include/cuda_runtime_api.h');
    const dir = fakeTree('trt-configure', '10.13.3', 'trt11');
    const r = spawnSync('cmake', ['-S', root, '-B', path.join(tmp, 'configure-build'), `-DTENSORRT_ROOT=${dir}`, '-DCMAKE_JS_INC=/nonexistent'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    if (hasCuda) expect(r.stdout).toMatch(/deimv2: building with TensorRT 10\.13\.3/);
    else expect(r.stdout).toMatch(/deimv2: building WITHOUT TensorRT: TensorRT 10\.13\.3 found but not the CUDA toolkit/);
  }, 120_000);

  it('configures the addon WITHOUT TensorRT when none is found, recording the reason', () => {
    const r = spawnSync('cmake', ['-S', root, '-B', path.join(tmp, 'configure-none'), `-DTENSORRT_ROOT=${path.join(tmp, 'empty')}`, '-DDEIMV2_WITHOUT_TENSORRT=ON'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/building WITHOUT TensorRT: the addon was configured with DEIMV2_WITHOUT_TENSORRT=ON/);
  });
});

describe('install step', () => {
  it('never fails, and says what it did', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install-native.js')], { encoding: 'utf8', env: { ...process.env, TENSORRT_ROOT: path.join(tmp, 'nowhere') } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^deimv2: (TensorRT not found|TensorRT addon ready|TensorRT headers in)/);
  });
});
