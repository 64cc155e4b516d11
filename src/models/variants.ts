/** The eight DEIMv2 variants and what the pipeline needs to know about each. */
export type VariantName = 'atto' | 'femto' | 'pico' | 'n' | 's' | 'm' | 'l' | 'x';
export type Normalization = 'none' | 'imagenet';
export type Backbone = 'hgnetv2' | 'dinov3';

export interface VariantConfig {
  readonly name: VariantName;
  readonly backbone: Backbone;
  /** Square input side in pixels. */
  readonly inputSize: number;
  /** Decoder queries. */
  readonly queries: number;
  readonly normalization: Normalization;
  /** Standard ONNX file name of the COCO export. */
  readonly fileName: string;
  /** COCO val2017 AP from the DEIMv2 paper. */
  readonly paperAP: number;
  readonly paramsM: number;
}

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

function hg(name: VariantName, inputSize: number, queries: number, paperAP: number, paramsM: number): VariantConfig {
  return { name, backbone: 'hgnetv2', inputSize, queries, normalization: 'none', fileName: `deimv2_hgnetv2_${name}_coco.onnx`, paperAP, paramsM };
}
function dino(name: VariantName, paperAP: number, paramsM: number): VariantConfig {
  return { name, backbone: 'dinov3', inputSize: 640, queries: 300, normalization: 'imagenet', fileName: `deimv2_dinov3_${name}_coco.onnx`, paperAP, paramsM };
}

export const VARIANTS: Readonly<Record<VariantName, VariantConfig>> = Object.freeze({
  atto: hg('atto', 320, 100, 23.8, 0.5),
  femto: hg('femto', 416, 150, 31.0, 1.0),
  pico: hg('pico', 640, 200, 38.5, 1.5),
  n: hg('n', 640, 300, 43.0, 3.6),
  s: dino('s', 50.9, 9.7),
  m: dino('m', 53.0, 18.1),
  l: dino('l', 56.0, 32.2),
  x: dino('x', 57.8, 50.3),
});

export const VARIANT_NAMES = Object.keys(VARIANTS) as VariantName[];

export function isVariantName(s: string): s is VariantName {
  return Object.prototype.hasOwnProperty.call(VARIANTS, s.toLowerCase());
}

/** The variant a file name stands for (deimv2_hgnetv2_femto_coco.onnx -> femto), or undefined. */
export function variantFromFileName(file: string): VariantName | undefined {
  const base = file.split(/[\\/]/).pop()!.toLowerCase();
  const m = /deimv2[_-](?:hgnetv2|dinov3)[_-](atto|femto|pico|n|s|m|l|x)(?:[_.-]|$)/.exec(base);
  return m ? (m[1] as VariantName) : undefined;
}
