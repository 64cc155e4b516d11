/**
 * Finds the ONNX file for `--model`: a variant name (atto, femto, ...) is looked up by its
 * standard file name in --model-dir, $DEIMV2_MODEL_DIR, ./models, then the models/ folder the
 * package ships (Atto); anything else is taken as a path to an .onnx file.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeimError } from '../errors.js';
import { VARIANTS, VARIANT_NAMES, isVariantName, variantFromFileName, type VariantName } from './variants.js';

/** The models/ folder inside the installed package. */
export const PACKAGE_MODEL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'models');

export const DEFAULT_MODEL: VariantName = 'atto';

export interface ModelSearchOptions {
  /** --model-dir: searched first. */
  modelDir?: string;
  /** Environment to read DEIMV2_MODEL_DIR from (default process.env). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface ResolvedModel {
  path: string;
  /** The variant named or recognised from the file name; undefined for a custom file name. */
  variant?: VariantName;
  /** Where it was found, for `deimv2 info` and messages. */
  source: 'path' | 'model-dir' | 'env' | 'cwd' | 'package';
}

/** The folders searched for variant files, in order, with where each comes from. */
export function modelSearchDirs(options: ModelSearchOptions = {}): Array<{ dir: string; source: ResolvedModel['source'] }> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const dirs: Array<{ dir: string; source: ResolvedModel['source'] }> = [];
  if (options.modelDir) dirs.push({ dir: path.resolve(cwd, options.modelDir), source: 'model-dir' });
  if (env.DEIMV2_MODEL_DIR) dirs.push({ dir: path.resolve(cwd, env.DEIMV2_MODEL_DIR), source: 'env' });
  dirs.push({ dir: path.resolve(cwd, 'models'), source: 'cwd' });
  dirs.push({ dir: PACKAGE_MODEL_DIR, source: 'package' });
  // The same folder reached twice (./models inside the package) is searched once.
  return dirs.filter((d, i) => dirs.findIndex((o) => o.dir === d.dir) === i);
}

/** Where each variant's file is, for every variant found. */
export function findVariantFiles(options: ModelSearchOptions = {}): Map<VariantName, ResolvedModel> {
  const found = new Map<VariantName, ResolvedModel>();
  for (const { dir, source } of modelSearchDirs(options)) {
    for (const name of VARIANT_NAMES) {
      if (found.has(name)) continue;
      const file = path.join(dir, VARIANTS[name].fileName);
      if (isFile(file)) found.set(name, { path: file, variant: name, source });
    }
  }
  return found;
}

export function resolveModel(spec: string = DEFAULT_MODEL, options: ModelSearchOptions = {}): ResolvedModel {
  if (typeof spec !== 'string' || spec.trim() === '') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `model must be a variant name (${VARIANT_NAMES.join(', ')}) or a path to an .onnx file`);
  }
  const looksLikePath = /[\\/]/.test(spec) || /\.onnx$/i.test(spec);
  if (!looksLikePath) {
    const name = spec.toLowerCase();
    if (!isVariantName(name)) {
      throw new DeimError('ERR_UNKNOWN_VARIANT', `unknown DEIMv2 variant "${spec}": expected one of ${VARIANT_NAMES.join(', ')}, or a path to an .onnx file`, { input: spec });
    }
    const hit = findVariantFiles(options).get(name);
    if (hit) return hit;
    const searched = modelSearchDirs(options).map((d) => d.dir).join(', ');
    throw new DeimError(
      'ERR_MODEL_NOT_FOUND',
      `model file for variant "${name}" not found: looked for ${VARIANTS[name].fileName} in ${searched}. ` +
        `Put the ONNX export there, pass --model-dir DIR, set DEIMV2_MODEL_DIR, or give --model path/to/model.onnx`,
      { input: spec },
    );
  }
  const file = path.resolve(options.cwd ?? process.cwd(), spec);
  if (!existsSync(file)) throw new DeimError('ERR_MODEL_NOT_FOUND', `model file not found: ${file}`, { input: spec });
  if (!isFile(file)) throw new DeimError('ERR_MODEL_INVALID', `model path is not a file: ${file}`, { input: spec });
  return { path: file, variant: variantFromFileName(file), source: 'path' };
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
