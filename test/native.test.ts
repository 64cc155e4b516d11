/**
 * What runs without a GPU: the addon built WITHOUT TensorRT (argument checks and the reason), the
 * engine cache (keys, sidecars, stale/corrupt detection), validation figures, FindTensorRT on fake
 * install trees, the install step that never fails, and the JS half of GPU preprocessing (frame
 * plans checked against a CPU run of the kernel's arithmetic, and inferFrames' argument checks).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, writeFileSync, rmSync, symlinkSync, truncateSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tensorrtAvailability, type NativeAddon } from '../dist/backends/tensorrt/index.js';
import {
  checkEngine, compareDetections, engineCacheKey, enginePaths, readSidecar, sha256File, writeSidecar,
  type EngineKeyParts, type EngineSidecar,
} from '../dist/engine/index.js';
import { FRAME_ITEM_FIELDS, FrameField, frameValueTable, planFrames, writeFrames, type PlannedFrames } from '../dist/backends/tensorrt/index.js';
import { decodeBuffer } from '../dist/image/decode.js';
import { imageToTensor, tensorSize } from '../dist/image/tensor.js';
import { WorkerPool } from '../dist/pool/worker-pool.js';
import { MemoryBudget } from '../dist/pool/budget.js';

const root = path.resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-native-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Loaded at collection time (skipIf needs to know how it was built). When the tree has no built
// addon, one is built into the temporary folder, never into the tree: a build/ left there would
// change what `deimv2 info` and every later run say.
function loadOrBuildAddon(): NativeAddon {
  // npm run test:asan points this at its sanitizer build.
  if (process.env.DEIMV2_NATIVE_ADDON) return createRequire(import.meta.url)(process.env.DEIMV2_NATIVE_ADDON) as NativeAddon;
  const release = path.join(root, 'build', 'Release');
  if (existsSync(release) && readdirSync(release).some((f) => f.endsWith('.node'))) {
    return createRequire(import.meta.url)('node-gyp-build')(root) as NativeAddon;
  }
  const out = path.join(tmp, 'addon-build');
  execFileSync(process.execPath, [createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js'), 'compile', '--out', out], { cwd: root, stdio: 'ignore' });
  const built = path.join(out, 'Release', readdirSync(path.join(out, 'Release')).find((f) => f.endsWith('.node'))!);
  return createRequire(import.meta.url)(built) as NativeAddon;
}
const addon = loadOrBuildAddon();

const hasTensorRt = () => addon.buildInfo().tensorrt;

describe('native addon arguments', () => {
  it('reports how it was built', () => {
    const info = addon.buildInfo();
    expect(info.napiVersion).toBe(8);
    expect(typeof info.tensorrt).toBe('boolean');
    if (!info.tensorrt) expect(info.reason).toMatch(/NvInfer\.h not found|older than 10\.6|not found|configured with DEIMV2_WITHOUT_TENSORRT=ON/);
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
    // The tree's own addon, if any (the stub above lives in a temporary folder).
    expect(a.detail).toMatch(/^TensorRT unavailable: (addon built without TensorRT \(|no native addon)/);
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
    else expect(r.stdout).toMatch(/deimv2: building WITHOUT TensorRT \(the simulated runtime is still built\): TensorRT 10\.13\.3 found but not the CUDA toolkit/);
  }, 120_000);

  it('configures the addon WITHOUT TensorRT when none is found, recording the reason', () => {
    const r = spawnSync('cmake', ['-S', root, '-B', path.join(tmp, 'configure-none'), `-DTENSORRT_ROOT=${path.join(tmp, 'empty')}`, '-DDEIMV2_WITHOUT_TENSORRT=ON'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/building WITHOUT TensorRT \(the simulated runtime is still built\): the addon was configured with DEIMV2_WITHOUT_TENSORRT=ON/);
  });
});

describe('install step', () => {
  it('without a C++ toolchain: says why and how, never fails; deimv2 info says the addon is missing and how to build it', () => {
    const bin = path.join(tmp, 'node-only-bin');
    mkdirSync(bin, { recursive: true });
    symlinkSync(process.execPath, path.join(bin, 'node'));
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install-native.js')], { encoding: 'utf8', env: { ...process.env, PATH: bin, DEIMV2_NATIVE_REBUILD: '1' } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^deimv2: not building the native addon: cmake is not installed\. The CPU backend works; .*install cmake and a C\+\+17 compiler .*then run npm run build:native\./);
    const info = spawnSync(process.execPath, [path.join(root, 'dist', 'cli', 'main.js'), 'info'], { encoding: 'utf8', env: { ...process.env, DEIMV2_NATIVE_ADDON: path.join(tmp, 'missing.node') } });
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/tensorrt\s+unavailable\s+TensorRT unavailable: the native addon could not be loaded \(.*\); run npm run build:native/);
    expect(info.stdout).toMatch(/cpu\s+available/);
  });

  it('never fails, and says what it did', () => {
    const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'install-native.js')], { encoding: 'utf8', env: { ...process.env, TENSORRT_ROOT: path.join(tmp, 'nowhere') } });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^deimv2: (native addon ready|building the native addon|TensorRT headers in|not building the native addon)/);
  });
});

// ---- GPU preprocessing: the JS half, the kernel's arithmetic and the native argument checks ----

const shared = path.resolve(root, '..', 'shared');
const frameFiles = [path.join(shared, 'images', 'example.jpg'), ...['000000006818.jpg', '000000017627.jpg', '000000037777.jpg'].map((f) => path.join(shared, 'coco', 'val2017', f))];

/**
 * binding/preprocess.cu step for step on the CPU (int32 sums, clip8, lut, border fill), reading the
 * exact arrays inferFrames() gets; the output starts as NaN so an unwritten float cannot pass.
 */
function emulateKernel(planned: PlannedFrames, frames: Uint8Array, batch: number, side: number): Float32Array {
  const { plan, tables, lut } = planned;
  const plane = side * side;
  const out = new Float32Array(batch * 3 * plane).fill(Number.NaN);
  const clip8 = (v: number) => Math.min(255, Math.max(0, v >> 22));
  for (let i = 0; i < batch; i++) {
    const f = (k: keyof typeof FrameField) => plan[i * FRAME_ITEM_FIELDS + FrameField[k]]!;
    const [srcW, srcH, stride, outW, outH, offX, offY] = [f('srcWidth'), f('srcHeight'), f('srcStride'), f('outWidth'), f('outHeight'), f('offsetX'), f('offsetY')];
    const base = i * 3 * plane;
    if (offX !== 0 || offY !== 0 || outW !== side || outH !== side) {
      for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) {
        if (x >= offX && x < offX + outW && y >= offY && y < offY + outH) continue;
        for (let c = 0; c < 3; c++) out[base + c * plane + y * side + x] = lut[c * 256]!;
      }
    }
    const scratch = new Uint8Array(srcH * outW * 3);
    const h = f('hTable');
    const hTaps = f('hTaps');
    for (let y = 0; y < srcH; y++) for (let x = 0; x < outW; x++) {
      const first = tables[h + 2 * x]!;
      const count = tables[h + 2 * x + 1]!;
      const k = h + 2 * outW + x * hTaps;
      for (let c = 0; c < 3; c++) {
        let s = 1 << 21;
        for (let t = 0; t < count; t++) s = (s + Math.imul(frames[f('frameOffset') + y * stride + (first + t) * 3 + c]!, tables[k + t]!)) | 0;
        scratch[(y * outW + x) * 3 + c] = clip8(s);
      }
    }
    const v = f('vTable');
    const vTaps = f('vTaps');
    for (let y = 0; y < outH; y++) for (let x = 0; x < outW; x++) {
      const first = tables[v + 2 * y]!;
      const count = tables[v + 2 * y + 1]!;
      const k = v + 2 * outH + y * vTaps;
      for (let c = 0; c < 3; c++) {
        let s = 1 << 21;
        for (let t = 0; t < count; t++) s = (s + Math.imul(scratch[((first + t) * outW + x) * 3 + c]!, tables[k + t]!)) | 0;
        out[base + c * plane + (y + offY) * side + (x + offX)] = lut[c * 256 + clip8(s)]!;
      }
    }
  }
  return out;
}

const sameBits = (a: Float32Array, b: Float32Array) => a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;

describe('GPU preprocessing: frame plans (CPU reference of the kernel)', () => {
  it('the uint8 -> float table is the one imageToTensor writes, for both normalisations', () => {
    for (const normalization of ['none', 'imagenet'] as const) {
      const lut = frameValueTable(normalization);
      const one = new Float32Array(3);
      for (let v = 0; v < 256; v++) {
        imageToTensor({ data: new Uint8Array([v, v, v]), width: 1, height: 1, channels: 3 }, 1, 'stretch', normalization, one, 0);
        expect([one[0], one[1], one[2]]).toEqual([lut[v], lut[256 + v], lut[512 + v]]);
      }
    }
  });

  it('the kernel run on the planned tables equals imageToTensor bit for bit (example + COCO, stretch and letterbox, 320 and 640)', async () => {
    const images = await Promise.all(frameFiles.map(async (f) => decodeBuffer(readFileSync(f), f)));
    for (const side of [320, 640]) {
      for (const mode of ['stretch', 'letterbox'] as const) {
        const normalization = side === 640 ? 'imagenet' : 'none';
        const planned = planFrames(images, side, mode, normalization);
        const frames = new Uint8Array(planned.frameBytes + 7);
        writeFrames(images, frames, planned);
        // The native checks accept exactly what the planner made.
        expect(addon.checkFramePlan(planned.plan, planned.tables, planned.lut, images.length, frames.length, side)).toEqual({ frameBytesUsed: planned.frameBytes });
        const cpu = new Float32Array(images.length * tensorSize(side));
        const transforms = images.map((image, i) => imageToTensor(image, side, mode, normalization, cpu, i * tensorSize(side)));
        expect(planned.transforms).toEqual(transforms);
        expect(sameBits(emulateKernel(planned, frames, images.length, side), cpu), `${side} ${mode}`).toBe(true);
      }
    }
  }, 120_000);

  it('stores a resampling table once per (input, output) size pair', () => {
    const frame = { data: new Uint8Array(64 * 48 * 3), width: 64, height: 48, channels: 3 as const };
    const one = planFrames([frame], 32, 'stretch', 'none');
    const four = planFrames([frame, frame, frame, frame], 32, 'stretch', 'none');
    expect(four.tables).toEqual(one.tables);
    expect(four.frameBytes).toBe(4 * 64 * 48 * 3);
    expect(() => planFrames([{ ...frame, channels: 4, data: new Uint8Array(64 * 48 * 4) }], 32, 'stretch', 'none')).toThrow(/Expected an RGB image \(3 channels\) for images\[0\]/);
    expect(() => writeFrames([frame], new Uint8Array(10), one)).toThrow(/at least 9216 bytes/);
  });

  it('checkFramePlan (the checks inferFrames makes) rejects every bad field before reading the staging', () => {
    const frame = { data: new Uint8Array(40 * 30 * 3), width: 40, height: 30, channels: 3 as const };
    const planned = planFrames([frame, frame], 16, 'letterbox', 'none');
    const staging = planned.frameBytes;
    const check = (plan: Int32Array, tables = planned.tables, lut: unknown = planned.lut, batch = 2, bytes = staging, side = 16) =>
      () => addon.checkFramePlan(plan, tables, lut as Float32Array, batch, bytes, side);
    const with_ = (image: number, field: keyof typeof FrameField, value: number) => {
      const p = planned.plan.slice();
      p[image * FRAME_ITEM_FIELDS + FrameField[field]] = value;
      return p;
    };
    expect(check(planned.plan)()).toEqual({ frameBytesUsed: staging });
    expect(check(planned.plan, planned.tables, planned.lut, 2, staging - 1)).toThrow(/Expected an integer between 0 and 3599 for plan\[1\]\.frameOffset but received 3600/);
    expect(check(planned.plan, planned.tables, planned.lut, 1)).toThrow(/Expected an Int32Array of 12 values \(12 per image, batch 1\) for plan but received 24 values/);
    expect(check(planned.plan, planned.tables, new Float32Array(10))).toThrow(/Expected a Float32Array of 768 values for lut/);
    expect(check(planned.plan, planned.tables, new Float64Array(768))).toThrow(TypeError);
    expect(check(Array.from(planned.plan) as unknown as Int32Array)).toThrow(/Expected an Int32Array for plan but received \[object\]/);
    expect(check(with_(0, 'srcWidth', 0))).toThrow(/between 1 and 65535 for plan\[0\]\.srcWidth but received 0/);
    expect(check(with_(1, 'srcStride', 119))).toThrow(/for plan\[1\]\.srcStride but received 119/);
    expect(check(with_(0, 'outWidth', 17))).toThrow(/between 1 and 16 for plan\[0\]\.outWidth but received 17/);
    expect(check(with_(0, 'offsetY', 5))).toThrow(/between 0 and 4 for plan\[0\]\.offsetY but received 5/);
    expect(check(with_(0, 'hTaps', 41))).toThrow(/between 1 and 40 for plan\[0\]\.hTaps/);
    expect(check(with_(0, 'vTable', planned.tables.length))).toThrow(/for plan\[0\]\.vTable/);
    const badWindow = planned.tables.slice();
    badWindow[0] = 39; // first input column of output 0 of the horizontal table: the window leaves the image
    expect(check(planned.plan, badWindow)).toThrow(/Expected a window inside the image .* for plan\[0\]\.hTable entry 0 but received first 39/);
    expect(() => addon.checkFramePlan(planned.plan, planned.tables, planned.lut, 0, staging, 16)).toThrow(/between 1 and 4096 for batch but received 0/);
  });

  it('openEngine checks the new options (frameBytes, cudaGraphs) in every build', () => {
    expect(() => addon.openEngine({ engine: 'a.engine', frameBytes: -1 })).toThrow(/between 0 and 2147483647 for frameBytes but received -1/);
    expect(() => addon.openEngine({ engine: 'a.engine', frameBytes: 1.5 })).toThrow(TypeError);
    expect(() => addon.openEngine({ engine: 'a.engine', cudaGraphs: 1 as never })).toThrow(/Expected a boolean for cudaGraphs but received 1/);
  });

  it("the pool's decode mode returns the decoded RGB images (what the TensorRT path writes into pinned memory) and failures", async () => {
    const pool = await WorkerPool.create({ worker: new URL('../dist/pool/decode-worker.js', import.meta.url), init: { budget: MemoryBudget.create(1 << 30).shared }, size: 1 });
    try {
      const bad = path.join(tmp, 'bad.jpg');
      writeFileSync(bad, 'not an image');
      const out = await pool.run([{ kind: 'path', path: frameFiles[0]! }, { kind: 'path', path: bad }, { kind: 'raw', image: { data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), width: 2, height: 1, channels: 4 }, name: 'rgba' }], { threshold: 0.4, maxDetections: 300 });
      expect(out.kind).toBe('decoded');
      if (out.kind !== 'decoded') return;
      const expected = await decodeBuffer(readFileSync(frameFiles[0]!), frameFiles[0]!);
      expect(out.slots[0]).toEqual({ index: 0, file: frameFiles[0] });
      expect(out.images[0]!.width).toBe(expected.width);
      expect(Buffer.compare(Buffer.from(out.images[0]!.data), Buffer.from(expected.data))).toBe(0);
      expect(out.slots[1]).toMatchObject({ file: bad, error: { code: expect.any(String) } });
      expect(out.images[1]).toEqual({ data: new Uint8Array([1, 2, 3, 5, 6, 7]), width: 2, height: 1, channels: 3 });
    } finally {
      await pool.close();
    }
  });
});
