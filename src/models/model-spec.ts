/**
 * What the pipeline needs to run a model file: its input side and normalisation. Known variants
 * take theirs from the VARIANTS table (checked against the graph); a custom model takes its input
 * size from the graph and its normalisation from the caller.
 */
import { DeimError } from '../errors.js';
import type { ModelIO } from '../backends/types.js';
import type { ResolvedModel } from './resolve.js';
import { VARIANTS, type Normalization, type VariantName } from './variants.js';

export interface ModelSpec {
  readonly path: string;
  readonly variant?: VariantName;
  readonly inputSize: number;
  readonly normalization: Normalization;
}

export interface ModelSpecOverrides {
  /** For custom models: 'none' (raw [0,1] RGB, HGNetv2) or 'imagenet' (DINOv3). */
  normalization?: Normalization;
  /** For custom models whose graph leaves the input size dynamic. */
  inputSize?: number;
}

export function modelSpec(resolved: ResolvedModel, io: ModelIO, overrides: ModelSpecOverrides = {}): ModelSpec {
  if (overrides.normalization !== undefined && overrides.normalization !== 'none' && overrides.normalization !== 'imagenet') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `normalization must be "none" or "imagenet", got "${overrides.normalization}"`);
  }
  if (overrides.inputSize !== undefined && (!Number.isInteger(overrides.inputSize) || overrides.inputSize < 32)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `inputSize must be an integer >= 32, got ${overrides.inputSize}`);
  }
  const variant = resolved.variant ? VARIANTS[resolved.variant] : undefined;
  const inputSize = io.inputSize ?? overrides.inputSize ?? variant?.inputSize;
  if (inputSize === undefined) {
    throw new DeimError('ERR_MODEL_INVALID', `${resolved.path}: the graph leaves the input size dynamic and the file name names no variant; pass --input-size`, { input: resolved.path });
  }
  if (variant && io.inputSize !== undefined && io.inputSize !== variant.inputSize) {
    // A file named like a variant but exported at another resolution: trust the graph.
    return { path: resolved.path, inputSize, normalization: overrides.normalization ?? variant.normalization };
  }
  return {
    path: resolved.path,
    ...(variant ? { variant: variant.name } : {}),
    inputSize,
    normalization: overrides.normalization ?? variant?.normalization ?? 'none',
  };
}
