/** Default Triton model names: `deimv2_<variant>` for the known variants, else the file's name. */
import path from 'node:path';
import { isVariantName, variantFromFileName, VARIANTS, type VariantConfig } from '../models/variants.js';

/** The variant a --model value names (a variant name or a standard file name), if any. */
export function variantOf(model: string): VariantConfig | undefined {
  if (isVariantName(model)) return VARIANTS[model.toLowerCase() as keyof typeof VARIANTS];
  const v = variantFromFileName(model);
  return v ? VARIANTS[v] : undefined;
}

/**
 * @example defaultModelName('femto') // 'deimv2_femto'
 * @example defaultModelName('exports/my detector.onnx') // 'my_detector'
 */
export function defaultModelName(model: string): string {
  const variant = variantOf(model);
  if (variant) return `deimv2_${variant.name}`;
  const base = path.basename(model).replace(/\.(onnx|engine|plan)$/i, '');
  const name = base.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[._-]+/, '').slice(0, 200);
  return name === '' ? 'deimv2_model' : name;
}
