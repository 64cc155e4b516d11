/**
 * Building engines: ONNX (prepared by `deimv2 prepare` unless opted out) -> TensorRT engine in the
 * cache folder, keyed and described by a sidecar, then validated against the CPU backend.
 * All policy lives here; the addon only builds what it is told.
 */
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DeimError } from '../errors.js';
import { resolveModel, type ResolvedModel } from '../models/resolve.js';
import { planOutputs, type OutputRequest } from '../output/plan.js';
import { hasFastFp16, probeTensorRt } from '../backends/tensorrt/availability.js';
import { checkEngine, enginePaths, sha256File, writeSidecar, type EngineKeyParts, type EngineSidecar } from './cache.js';
import type { NativeBuildProgress } from '../backends/tensorrt/native.js';
import { validateEngine, validationImages } from './validate.js';

export interface BuildEngineOptions {
  /** Variant name or .onnx path (as Detector.create), or a model resolveModel() already found. */
  model: string | ResolvedModel;
  modelDir?: string;
  /** Default: fp16 on GPUs with fast FP16 (compute capability >= 7.0, 6.0, 6.2, 5.3), else fp32. */
  precision?: 'fp16' | 'fp32';
  /** Batch profile: min 1 <= opt <= max. Defaults: max 1, opt = max. */
  maxBatch?: number;
  optBatch?: number;
  /** Builder workspace in MiB; default TensorRT's (all device memory). */
  workspaceMiB?: number;
  /** Folder for engines, sidecars, prepared graphs and the timing cache. Default: engineCacheDir(). */
  out?: string;
  /** CUDA device index; default 0. */
  device?: number;
  /** Timing cache file; default `<out>/timing.<gpu>.<trt>.cache`. */
  timingCache?: string;
  /** Extra images to validate with, besides the package's example image. */
  validateImages?: string;
  /** Validate against the CPU backend after building; default true. */
  validate?: boolean;
  /** Build from the engine-ready graph of `deimv2 prepare`; default true. */
  prepare?: boolean;
  /** Rebuild even when a valid cached engine exists. */
  force?: boolean;
  onProgress?: (event: NativeBuildProgress) => void;
  /** One line per step of the whole operation (prepare, build, validate). */
  onLog?: (line: string) => void;
}

export interface BuildEngineResult {
  readonly engine: string;
  readonly sidecar: EngineSidecar;
  /** True when a valid cached engine was reused instead of building. */
  readonly reused: boolean;
}

/** `DEIMV2_ENGINE_DIR`, else `$XDG_CACHE_HOME/deimv2/engines`, else `~/.cache/deimv2/engines`. */
export function engineCacheDir(): string {
  if (process.env.DEIMV2_ENGINE_DIR) return process.env.DEIMV2_ENGINE_DIR;
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'deimv2', 'engines');
}

function checkInt(value: number | undefined, name: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected an integer between ${min} and ${max} for ${name} but received ${String(value)}`, { input: String(value) });
  }
  return value;
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-|-$/g, '');

/**
 * Builds (or reuses) a validated engine.
 * @example const { engine } = await buildEngine({ model: 'femto', precision: 'fp16', maxBatch: 16, out: 'engines' });
 */
export async function buildEngine(options: BuildEngineOptions): Promise<BuildEngineResult> {
  const log = options.onLog ?? (() => {});
  const probe = probeTensorRt();
  if (!probe.ok) throw new DeimError('ERR_BACKEND_UNAVAILABLE', probe.reason);
  const device = checkInt(options.device, 'device', 0, probe.devices.length - 1, 0);
  const gpu = probe.devices[device]!;
  const maxBatch = checkInt(options.maxBatch, 'maxBatch', 1, 4096, 1);
  const optBatch = checkInt(options.optBatch, 'optBatch', 1, maxBatch, maxBatch);
  const workspaceMiB = checkInt(options.workspaceMiB, 'workspaceMiB', 0, 1 << 20, 0);
  if (options.precision !== undefined && options.precision !== 'fp16' && options.precision !== 'fp32') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected fp16 or fp32 for precision but received ${String(options.precision)}`);
  }
  const precision = options.precision ?? (hasFastFp16(gpu.computeCapability) ? 'fp16' : 'fp32');
  const trtMajor = Number(probe.version.split('.')[0]);
  const resolved = typeof options.model === 'string' ? resolveModel(options.model, options.modelDir !== undefined ? { modelDir: options.modelDir } : {}) : options.model;
  const out = path.resolve(options.out ?? engineCacheDir());
  const modelName = path.basename(resolved.path).replace(/\.onnx$/i, '');
  const timingCache = options.timingCache ?? path.join(out, `timing.${slug(gpu.name)}.sm${gpu.computeCapability}.trt${probe.version}.cache`);
  const prepared = options.prepare !== false ? path.join(out, `${modelName}.${precision}.prepared.onnx`) : undefined;
  // Every file the build writes, checked against what it reads (the model, the validation images)
  // and each other before anything is written; the engine and its sidecar join once their key is known.
  const images = options.validate !== false ? await validationImages(options.validateImages) : [];
  const reads = [resolved.path, ...images];
  const writes: OutputRequest[] = [
    { path: out, kind: 'folder', flag: '--out' },
    { path: timingCache, kind: 'timing-cache', flag: options.timingCache !== undefined ? '--timing-cache' : 'the timing cache' },
    ...(prepared !== undefined ? [{ path: prepared, kind: 'onnx', flag: 'the prepared graph' }] : []),
  ];
  planOutputs({ inputs: reads, outputs: writes });

  // The graph TensorRT parses: the prepared one (GridSample rewritten; for fp16 a strongly typed
  // mixed-precision graph), or the original.
  let onnx = resolved.path;
  let stronglyTyped = false;
  if (prepared !== undefined) {
    const { prepareModel } = await import('../prepare/index.js');
    log(`prepare: ${resolved.path} -> ${prepared} (${precision})`);
    await prepareModel(resolved.path, { out: prepared, precision });
    onnx = prepared;
    stronglyTyped = precision === 'fp16';
  } else if (precision === 'fp16' && trtMajor >= 11) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `TensorRT ${probe.version} builds strongly typed networks only: fp16 needs the prepared graph (drop --no-prepare) or use --precision fp32`);
  }

  const parts: EngineKeyParts = {
    onnxSha256: await sha256File(onnx),
    gpuName: gpu.name,
    computeCapability: gpu.computeCapability,
    tensorrtVersion: probe.version,
    precision,
    profile: { min: 1, opt: optBatch, max: maxBatch },
  };
  const paths = enginePaths(out, modelName, parts);
  try {
    planOutputs({ inputs: reads, outputs: [...writes, { path: paths.engine, kind: 'engine', flag: 'the engine' }, { path: paths.sidecar, kind: 'json', flag: 'the engine sidecar' }] });
  } catch (e) {
    if (prepared === undefined || !(e instanceof DeimError)) throw e;
    throw new DeimError(e.code, e.message.replace(/nothing was written$/, `only the prepared graph ${prepared} was written`), { ...(e.input !== undefined ? { input: e.input } : {}), cause: e });
  }
  if (!options.force) {
    const check = await checkEngine(paths.engine, parts, options.validate !== false);
    if (check.status === 'ok') {
      log(`reusing ${paths.engine}`);
      return { engine: paths.engine, sidecar: check.sidecar, reused: true };
    }
    if (check.status !== 'missing') log(`rebuilding: ${check.reason}`);
  }

  log(`build: TensorRT ${probe.version}, ${precision}, batch 1..${maxBatch} (opt ${optBatch}), ${gpu.name} -> ${paths.engine}`);
  let built;
  try {
    built = await probe.addon.buildEngine(
      { onnx, engine: paths.engine, precision, stronglyTyped, minBatch: 1, optBatch, maxBatch, workspaceMiB, device, timingCache },
      options.onProgress,
    );
  } catch (e) {
    // The engine file could not be written (a full disk): that is the output's fault, not TensorRT's.
    if ((e as { code?: string }).code === 'ERR_OUTPUT_WRITE') throw new DeimError('ERR_OUTPUT_WRITE', `cannot write the engine ${paths.engine}: ${(e as Error).message}`, { input: paths.engine, cause: e });
    throw new DeimError('ERR_BACKEND_FAILED', `TensorRT ${probe.version} could not build ${precision} engine from ${onnx}: ${(e as Error).message}`, { input: onnx, cause: e });
  }
  for (const warning of built.warnings) log(`TensorRT: ${warning}`);
  let sidecar: EngineSidecar = {
    format: 1, key: paths.key, ...parts,
    engineBytes: built.bytes, engineSha256: await sha256File(paths.engine),
    sourceModel: resolved.path, builtAt: new Date().toISOString(), buildMs: Math.round(built.buildMs), device,
  };
  await writeSidecar(paths.sidecar, sidecar);

  if (options.validate !== false) {
    log(`validate: ${images.length} image(s) against the CPU backend`);
    const validation = await validateEngine({ engine: paths.engine, model: resolved, device, precision, images });
    sidecar = { ...sidecar, validation };
    await writeSidecar(paths.sidecar, sidecar);
    if (!validation.passed) {
      throw new DeimError('ERR_ENGINE_VALIDATION',
        `the TensorRT ${probe.version} ${precision} engine does not match the CPU backend: ${validation.message}` +
        `${precision === 'fp16' ? ' (try --precision fp32)' : ''}; engine kept at ${paths.engine} for inspection, --no-validate uses it anyway`,
        { input: paths.engine });
    }
    log(`validate: ${validation.message}`);
  }
  return { engine: paths.engine, sidecar, reused: false };
}

/** Removes an engine and its sidecar (a corrupt engine before rebuilding). */
export async function removeEngine(enginePath: string): Promise<void> {
  await rm(enginePath, { force: true });
  await rm(enginePath.replace(/\.engine$/i, '') + '.json', { force: true });
}
