/**
 * Getting an engine to run: the user's engine file (checked against its sidecar when it has one),
 * or a validated engine from the cache, built when missing, stale or corrupt, and rebuilt once when
 * TensorRT refuses a cached file that passed the checks (e.g. after a driver update).
 */
import { DeimError } from '../errors.js';
import type { ResolvedModel } from '../models/resolve.js';
import { resolveModel } from '../models/resolve.js';
import type { Runner, RunnerSetup } from '../backends/runner.js';
import { probeTensorRt } from '../backends/tensorrt/availability.js';
import { openEngineFile, type EngineOpenOptions, type TensorRtBackend } from '../backends/tensorrt/backend.js';
import { openEngineRunner } from '../backends/tensorrt/runner.js';
import { buildEngine, removeEngine } from './build.js';
import { checkEngine } from './cache.js';

export interface EngineSource {
  /** The model, resolved once (used to build the engine when `engine` is not given). */
  model: ResolvedModel;
  /** A prebuilt engine file (`deimv2 build`); else one is built or reused from the cache. */
  engine?: string;
  device?: number;
  precision?: 'fp16' | 'fp32';
  /** Largest batch the engine must take; default 1. */
  maxBatch?: number;
  /** Engine cache folder; default engineCacheDir(). */
  cacheDir?: string;
}

/** Finds or builds the engine and opens it with `open`, rebuilding once when a cached engine is refused. */
async function withEngine<T>(source: EngineSource, open: (engine: string, description: string) => Promise<T>): Promise<T> {
  const probe = probeTensorRt();
  if (!probe.ok) throw new DeimError('ERR_BACKEND_UNAVAILABLE', probe.reason);
  const device = source.device ?? 0;
  if (source.engine !== undefined) {
    // A user's engine may come without a sidecar (trtexec); when it has one, it must match the file.
    const check = await checkEngine(source.engine, undefined, false);
    if (check.status === 'missing') throw new DeimError('ERR_ENGINE_INVALID', `engine file not found: ${source.engine}`, { input: source.engine });
    if (check.status === 'corrupt' && !/has no sidecar/.test(check.reason)) throw new DeimError('ERR_ENGINE_INVALID', check.reason, { input: source.engine });
    return open(source.engine, `TensorRT ${probe.version} engine ${source.engine} on device ${device}`);
  }
  const build = (force: boolean) => buildEngine({
    model: source.model, device, maxBatch: source.maxBatch ?? 1, force,
    ...(source.precision ? { precision: source.precision } : {}),
    ...(source.cacheDir ? { out: source.cacheDir } : {}),
  });
  let built = await build(false);
  const describe = () => `TensorRT ${probe.version} ${built.sidecar.precision} on ${built.sidecar.gpuName} (device ${device})`;
  try {
    return await open(built.engine, describe());
  } catch (e) {
    if (!(e instanceof DeimError) || e.code !== 'ERR_ENGINE_INVALID') throw e;
    await removeEngine(built.engine);
    built = await build(true);
    return open(built.engine, describe());
  }
}

/** The TensorRT runner for a Detector (src/runners.ts). */
export function openTensorRtRunner(setup: RunnerSetup): Promise<Runner> {
  return withEngine(
    { model: setup.model, maxBatch: setup.batch, ...pick(setup, 'engine', 'device', 'precision') },
    (engine, description) => openEngineRunner(engine, setup, description),
  );
}

export interface TensorRtBackendOptions extends EngineOpenOptions {
  /** The ONNX model: a variant name, a path, or a model resolved by resolveModel(). */
  modelPath: string | ResolvedModel;
  /** A prebuilt engine file (`deimv2 build`); else one is built or reused from the cache. */
  engine?: string;
  precision?: 'fp16' | 'fp32';
  /** Engine cache folder; default engineCacheDir(). */
  cacheDir?: string;
}

/**
 * Opens the engine named by `options.engine`, or builds/reuses a validated one from the cache, as a
 * TensorRtBackend (tensors in, raw detections out).
 * @example const backend = await createTensorRtBackend({ modelPath: 'femto.onnx', maxBatch: 8 });
 */
export function createTensorRtBackend(options: TensorRtBackendOptions): Promise<TensorRtBackend> {
  const model = typeof options.modelPath === 'string' ? resolveModel(options.modelPath) : options.modelPath;
  return withEngine(
    { model, ...pick(options, 'engine', 'device', 'precision', 'maxBatch', 'cacheDir') },
    (engine, description) => openEngineFile(engine, options, description),
  );
}

function pick<T extends object, K extends keyof T>(o: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
