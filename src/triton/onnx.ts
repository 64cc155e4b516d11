/**
 * The ONNX form of a Triton model: `1/model.onnx`, platform `onnxruntime_onnx`, IO read from the
 * graph itself, KIND_CPU instances by default, so the same repository layout serves on a CPU-only
 * Triton (and, with kind 'gpu', on onnxruntime's CUDA provider).
 */
import { readFile } from 'node:fs/promises';
import { DeimError, errorMessage } from '../errors.js';
import { onnx, type ModelProto, type ValueInfoProto } from '../prepare/onnx-io.js';
import { tritonConfig, type TritonTensor } from './config.js';
import { defaultModelName, variantOf } from './names.js';
import { writeRepository, type RepositoryResult } from './repository.js';

export interface TritonOnnxOptions {
  repo: string;
  /** The ONNX model: a file, or encoded bytes (e.g. PrepareResult.bytes). */
  onnx: string | Uint8Array;
  /** The --model value it came from (variant name or path), for the default name and README. */
  model?: string;
  /** Model name; default from `model`, else from the ONNX file name. */
  name?: string;
  /** Files never to be written (the model the bytes were prepared from). */
  inputs?: string[];
  /** Largest batch Triton forms. Default 8. */
  maxBatchSize?: number;
  preferredBatchSizes?: number[];
  maxQueueDelayUs?: number;
  /** Default 'cpu'. */
  kind?: 'cpu' | 'gpu';
  /** Default 1. */
  instances?: number;
  /** For kind 'gpu'. Default [0]. */
  gpus?: number[];
}

export const DEFAULT_ONNX_MAX_BATCH = 8;

/** ONNX TensorProto.DataType -> the addon's dtype names. */
const ONNX_DTYPES: Readonly<Record<number, string>> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

/**
 * The graph's inputs (initializers excluded) and outputs, with -1 for every axis that has no fixed size.
 * @example onnxTensors(loadModel('deimv2_hgnetv2_atto_coco.onnx'), 'atto')
 */
export function onnxTensors(model: ModelProto, source: string): TritonTensor[] {
  const graph = model.graph;
  if (!graph) throw new DeimError('ERR_MODEL_INVALID', `${source} has no graph`, { input: source });
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const describe = (v: ValueInfoProto, input: boolean): TritonTensor => {
    const tensorType = v.type?.tensorType;
    const name = v.name ?? '';
    if (!tensorType) throw new DeimError('ERR_MODEL_INVALID', `${source}: ${input ? 'input' : 'output'} "${name}" is not a tensor`, { input: source });
    const dtype = ONNX_DTYPES[Number(tensorType.elemType ?? 0)] ?? `ONNX type ${String(tensorType.elemType)}`;
    const dims = tensorType.shape?.dim;
    if (!dims) throw new DeimError('ERR_MODEL_INVALID', `${source}: ${input ? 'input' : 'output'} "${name}" has no declared shape`, { input: source });
    const shape = dims.map((d) => {
      const value = d.dimValue === undefined || d.dimValue === null ? 0 : Number(d.dimValue);
      return value > 0 ? value : -1;
    });
    return { name, input, dtype, shape };
  };
  return [
    ...(graph.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map((v) => describe(v, true)),
    ...(graph.output ?? []).map((v) => describe(v, false)),
  ];
}

/**
 * @example
 * const prepared = await prepareModel('femto');
 * await writeTritonOnnx({ repo: 'models', onnx: prepared.bytes, model: 'femto', inputs: [prepared.inputPath] });
 */
export async function writeTritonOnnx(options: TritonOnnxOptions): Promise<RepositoryResult> {
  const source = typeof options.onnx === 'string' ? options.onnx : (options.model ?? 'the ONNX model');
  let bytes: Uint8Array;
  if (typeof options.onnx === 'string') {
    try {
      bytes = await readFile(options.onnx);
    } catch (e) {
      throw new DeimError('ERR_MODEL_NOT_FOUND', `cannot read ONNX model ${options.onnx}: ${errorMessage(e)}`, { input: options.onnx, cause: e });
    }
  } else bytes = options.onnx;
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new DeimError('ERR_MODEL_INVALID', `${source} is not a valid ONNX model: ${errorMessage(e)}`, { input: source, cause: e });
  }
  const tensors = onnxTensors(model, source);
  const modelRef = options.model ?? (typeof options.onnx === 'string' ? options.onnx : 'deimv2_model');
  const name = options.name ?? defaultModelName(modelRef);
  const kind = options.kind ?? 'cpu';
  if (kind !== 'cpu' && kind !== 'gpu') throw new DeimError('ERR_INVALID_ARGUMENT', `Expected cpu or gpu for the Triton instance kind but received ${String(kind)}`);
  const config = tritonConfig(tensors, {
    name,
    platform: 'onnxruntime_onnx',
    maxBatchSize: options.maxBatchSize ?? DEFAULT_ONNX_MAX_BATCH,
    ...(options.preferredBatchSizes ? { preferredBatchSizes: options.preferredBatchSizes } : {}),
    ...(options.maxQueueDelayUs !== undefined ? { maxQueueDelayUs: options.maxQueueDelayUs } : {}),
    kind,
    instances: options.instances ?? 1,
    ...(options.gpus ? { gpus: options.gpus } : {}),
  }, source);
  return writeRepository({
    repo: options.repo,
    name,
    config,
    readme: onnxReadme(name, modelRef, tensors, model, kind),
    fileName: 'model.onnx',
    source: { bytes },
    inputs: [...(typeof options.onnx === 'string' ? [options.onnx] : []), ...(options.inputs ?? [])],
  });
}

function onnxReadme(name: string, model: string, tensors: readonly TritonTensor[], proto: ModelProto, kind: 'cpu' | 'gpu'): string {
  const variant = variantOf(model);
  const opset = (proto.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx')?.version;
  const shape = (t: TritonTensor) => `${t.dtype} [${t.shape.map((d) => (d === -1 ? '?' : d)).join(',')}]`;
  return [
    `${name}: DEIMv2${variant ? ` ${variant.name}` : ''} object detector as ONNX for NVIDIA Triton Inference Server (onnxruntime backend)`,
    '',
    `From ${model} by deimv2 prepare (ONNX IR ${String(proto.irVersion ?? '?')}, opset ${String(opset ?? '?')}).`,
    kind === 'cpu'
      ? 'Runs on any Triton with the onnxruntime backend, CPU-only builds included (instance_group KIND_CPU).'
      : 'Runs on GPUs through the onnxruntime backend (instance_group KIND_GPU); write it with kind cpu for a CPU-only Triton.',
    '',
    'Inputs (? = dynamic; the first axis is the batch):',
    ...tensors.filter((t) => t.input).map((t) => `  ${t.name}: ${shape(t)}`),
    `  images: RGB, values in [0,1]${variant?.normalization === 'imagenet' ? ', then ImageNet mean/std normalised' : ''}, the whole image resized to the square side;`,
    '  orig_target_sizes: (width, height) of the original image.',
    'Outputs:',
    ...tensors.filter((t) => !t.input).map((t) => `  ${t.name}: ${shape(t)}`),
    '  labels: class index (0..79 for the COCO exports), boxes: x1,y1,x2,y2 in original-image pixels, scores: 0..1.',
    '',
    'Serve: tritonserver --model-repository=<the folder holding this one>',
    '',
  ].join('\n');
}
