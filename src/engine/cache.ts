/**
 * The engine cache: an engine file is keyed by everything that makes it valid (ONNX bytes, GPU model
 * and compute capability, TensorRT version, precision, batch profile), so an engine from another GPU
 * or TensorRT is rebuilt instead of crashing; a JSON sidecar beside it records what it was built from
 * and the engine's own size and sha256, so a truncated or corrupt file is detected before TensorRT
 * sees it (TensorRT's deserialize failure is the second line of defence).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { DeimError } from '../errors.js';
import { writeFileAtomic } from '../output/atomic.js';
import type { ValidationFigures } from '../postprocess/compare.js';

/** Bump when the engine build changes in a way the other key parts do not capture. */
export const ENGINE_FORMAT = 1;

export interface BatchProfile {
  readonly min: number;
  readonly opt: number;
  readonly max: number;
}

export interface EngineKeyParts {
  /** sha256 of the ONNX graph the engine is built from (the prepared graph when there is one). */
  readonly onnxSha256: string;
  readonly gpuName: string;
  readonly computeCapability: string;
  readonly tensorrtVersion: string;
  readonly precision: 'fp16' | 'fp32';
  readonly profile: BatchProfile;
}

export type { ValidationFigures } from '../postprocess/compare.js';

export interface EngineSidecar extends EngineKeyParts {
  readonly format: number;
  readonly key: string;
  readonly engineBytes: number;
  readonly engineSha256: string;
  /** The ONNX file the user named (before prepare). */
  readonly sourceModel: string;
  readonly builtAt: string;
  readonly buildMs: number;
  readonly device: number;
  readonly validation?: ValidationFigures;
}

/** A stable key: sha256 of the key parts in a fixed order. */
export function engineCacheKey(parts: EngineKeyParts): string {
  const canonical = JSON.stringify([
    ENGINE_FORMAT,
    parts.onnxSha256,
    parts.gpuName,
    parts.computeCapability,
    parts.tensorrtVersion,
    parts.precision,
    parts.profile.min,
    parts.profile.opt,
    parts.profile.max,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** `<dir>/<model>.<precision>.b<max>.<key16>.engine` and its `.json` sidecar. */
export function enginePaths(dir: string, modelName: string, parts: EngineKeyParts): { engine: string; sidecar: string; key: string } {
  const key = engineCacheKey(parts);
  const base = `${modelName}.${parts.precision}.b${parts.profile.max}.${key.slice(0, 16)}`;
  const engine = path.join(dir, `${base}.engine`);
  return { engine, sidecar: sidecarPath(engine), key };
}

export function sidecarPath(enginePath: string): string {
  return enginePath.replace(/\.engine$/i, '') + '.json';
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes the sidecar atomically (temp file + rename), so a reader never sees half of it. */
export async function writeSidecar(file: string, sidecar: EngineSidecar): Promise<void> {
  await writeFileAtomic(file, JSON.stringify(sidecar, null, 2) + '\n');
}

/** Reads a sidecar; a missing file is undefined, an unreadable or malformed one is ERR_ENGINE_INVALID. */
export async function readSidecar(file: string): Promise<EngineSidecar | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DeimError('ERR_ENGINE_INVALID', `cannot read engine sidecar ${file}: ${(e as Error).message}`, { input: file, cause: e });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new DeimError('ERR_ENGINE_INVALID', `engine sidecar ${file} is not valid JSON: ${(e as Error).message}`, { input: file, cause: e });
  }
  const s = data as Partial<EngineSidecar>;
  const strings = ['key', 'onnxSha256', 'gpuName', 'computeCapability', 'tensorrtVersion', 'precision', 'engineSha256'] as const;
  for (const field of strings) {
    if (typeof s[field] !== 'string') {
      throw new DeimError('ERR_ENGINE_INVALID', `engine sidecar ${file} lacks the string field "${field}"`, { input: file });
    }
  }
  if (typeof s.engineBytes !== 'number' || typeof s.profile !== 'object' || s.profile === null) {
    throw new DeimError('ERR_ENGINE_INVALID', `engine sidecar ${file} lacks engineBytes or profile`, { input: file });
  }
  return s as EngineSidecar;
}

export type EngineCheck =
  | { readonly status: 'ok'; readonly sidecar: EngineSidecar }
  | { readonly status: 'missing' | 'stale' | 'corrupt' | 'unvalidated'; readonly reason: string };

/**
 * Whether `enginePath` is a usable engine for `expected`: present, same key, same size and sha256 as
 * when it was built, and (unless `requireValidation` is false) validated.
 * @example const c = await checkEngine('femto.fp16.b16.ab12.engine', parts); if (c.status !== 'ok') rebuild(c.reason);
 */
export async function checkEngine(enginePath: string, expected: EngineKeyParts | undefined, requireValidation = true): Promise<EngineCheck> {
  let size: number;
  try {
    size = (await stat(enginePath)).size;
  } catch {
    return { status: 'missing', reason: `no engine at ${enginePath}` };
  }
  let sidecar: EngineSidecar | undefined;
  try {
    sidecar = await readSidecar(sidecarPath(enginePath));
  } catch (e) {
    return { status: 'corrupt', reason: (e as Error).message };
  }
  if (!sidecar) return { status: 'corrupt', reason: `engine ${enginePath} has no sidecar ${sidecarPath(enginePath)}` };
  if (expected) {
    const key = engineCacheKey(expected);
    if (sidecar.key !== key) {
      const changed = (['onnxSha256', 'gpuName', 'computeCapability', 'tensorrtVersion', 'precision'] as const)
        .filter((k) => sidecar[k] !== expected[k])
        .map((k) => `${k} ${sidecar[k]} -> ${expected[k]}`);
      const profile = `${sidecar.profile.min}/${sidecar.profile.opt}/${sidecar.profile.max}`;
      if (profile !== `${expected.profile.min}/${expected.profile.opt}/${expected.profile.max}`) changed.push(`profile ${profile}`);
      return { status: 'stale', reason: `engine ${enginePath} was built for another setup (${changed.join(', ') || 'format'})` };
    }
  }
  if (size !== sidecar.engineBytes) {
    return { status: 'corrupt', reason: `engine ${enginePath} has ${size} bytes, its sidecar says ${sidecar.engineBytes} (truncated or overwritten)` };
  }
  const sha = await sha256File(enginePath);
  if (sha !== sidecar.engineSha256) {
    return { status: 'corrupt', reason: `engine ${enginePath} sha256 ${sha.slice(0, 12)}… differs from its sidecar's ${sidecar.engineSha256.slice(0, 12)}…` };
  }
  if (requireValidation && !sidecar.validation?.passed) {
    return { status: 'unvalidated', reason: `engine ${enginePath} ${sidecar.validation ? `failed validation: ${sidecar.validation.message}` : 'was never validated'}` };
  }
  return { status: 'ok', sidecar };
}
