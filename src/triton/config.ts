/**
 * The Triton model configuration of a DEIMv2 model, made from the model's real IO (a TensorRT
 * engine's `tensors`/`profile`, or an ONNX graph's inputs and outputs), and its protobuf text form
 * (config.pbtxt). Field names and enum values follow Triton's model_config.proto
 * (triton-inference-server/common, protobuf/model_config.proto, package `inference`).
 */
import { DeimError } from '../errors.js';

/** One IO tensor, shaped like the addon's engine `tensors` entries: -1 marks a dynamic axis. */
export interface TritonTensor {
  readonly name: string;
  readonly input: boolean;
  readonly dtype: string;
  readonly shape: readonly number[];
}

export type TritonPlatform = 'tensorrt_plan' | 'onnxruntime_onnx';
export type TritonDataType =
  | 'TYPE_BOOL' | 'TYPE_UINT8' | 'TYPE_UINT16' | 'TYPE_UINT32' | 'TYPE_UINT64' | 'TYPE_INT8' | 'TYPE_INT16'
  | 'TYPE_INT32' | 'TYPE_INT64' | 'TYPE_FP16' | 'TYPE_FP32' | 'TYPE_FP64' | 'TYPE_BF16';

/** ModelInput / ModelOutput: name, data_type, dims (without the batch axis when max_batch_size > 0). */
export interface TritonTensorConfig {
  readonly name: string;
  readonly data_type: TritonDataType;
  readonly dims: readonly number[];
}

/** The subset of inference.ModelConfig this package writes, with the proto's field names. */
export interface TritonModelConfig {
  readonly name: string;
  readonly platform: TritonPlatform;
  readonly max_batch_size: number;
  readonly input: readonly TritonTensorConfig[];
  readonly output: readonly TritonTensorConfig[];
  /** Absent when the model has no batch axis (max_batch_size 0). */
  readonly dynamic_batching?: { readonly preferred_batch_size: readonly number[]; readonly max_queue_delay_microseconds: number };
  readonly instance_group: ReadonlyArray<{ readonly kind: 'KIND_GPU' | 'KIND_CPU'; readonly count: number; readonly gpus?: readonly number[] }>;
  /** CUDA graphs (TensorRT plans only). */
  readonly optimization?: { readonly cuda: { readonly graphs: boolean } };
}

export interface TritonConfigOptions {
  name: string;
  platform: TritonPlatform;
  /** Largest batch Triton may form; for a plan at most the profile's max (the default there). */
  maxBatchSize: number;
  /** Default: the plan profile's opt and max, or [maxBatchSize]. */
  preferredBatchSizes?: readonly number[];
  /** How long the dynamic batcher waits to fill a batch. Default DEFAULT_QUEUE_DELAY_US. */
  maxQueueDelayUs?: number;
  kind: 'gpu' | 'cpu';
  /** Model instances per device (GPU) or on the host (CPU). Default 1. */
  instances?: number;
  /** GPU indices for KIND_GPU. Default [0]. */
  gpus?: readonly number[];
  /** Ask Triton to capture CUDA graphs (TensorRT plans on GPUs). */
  cudaGraphs?: boolean;
}

/** Dynamic batcher delay: 0.5 ms, small next to a DEIMv2 inference yet enough to gather a burst. */
export const DEFAULT_QUEUE_DELAY_US = 500;

/** The addon's dtype names (and the ONNX ones mapped to them) -> Triton data types. */
const DATA_TYPES: Readonly<Record<string, TritonDataType>> = {
  bool: 'TYPE_BOOL', uint8: 'TYPE_UINT8', uint16: 'TYPE_UINT16', uint32: 'TYPE_UINT32', uint64: 'TYPE_UINT64',
  int8: 'TYPE_INT8', int16: 'TYPE_INT16', int32: 'TYPE_INT32', int64: 'TYPE_INT64',
  float16: 'TYPE_FP16', float32: 'TYPE_FP32', float64: 'TYPE_FP64', bfloat16: 'TYPE_BF16',
};

export function tritonDataType(dtype: string, tensor: string, source: string): TritonDataType {
  const type = Object.prototype.hasOwnProperty.call(DATA_TYPES, dtype) ? DATA_TYPES[dtype] : undefined;
  if (!type) throw new DeimError('ERR_MODEL_INVALID', `${source}: tensor "${tensor}" has data type ${dtype}, which a Triton model configuration cannot express`, { input: source });
  return type;
}

const INPUTS = ['images', 'orig_target_sizes'] as const;
const OUTPUTS = ['labels', 'boxes', 'scores'] as const;

/**
 * The config for a DEIMv2 model from its IO. Every input of the model is listed (Triton requires
 * that for plans), the DEIMv2 tensors first; `source` names the engine or graph in errors.
 * @example tritonConfig(engine.tensors, { name: 'deimv2_femto', platform: 'tensorrt_plan', maxBatchSize: 16, kind: 'gpu' }, 'femto.engine')
 */
export function tritonConfig(tensors: readonly TritonTensor[], options: TritonConfigOptions, source: string): TritonModelConfig {
  checkModelName(options.name);
  const missing = [
    ...INPUTS.filter((n) => !tensors.some((t) => t.input && t.name === n)).map((n) => `input "${n}"`),
    ...OUTPUTS.filter((n) => !tensors.some((t) => !t.input && t.name === n)).map((n) => `output "${n}"`),
  ];
  if (missing.length > 0) {
    throw new DeimError('ERR_MODEL_NOT_DEIMV2', `${source} is not a DEIMv2 model: it has no ${missing.join(', ')} (tensors: ${tensors.map((t) => t.name).join(', ')})`, { input: source });
  }
  for (const t of tensors) {
    if (t.shape.length === 0 || t.shape.some((d) => !Number.isInteger(d) || d === 0 || d < -1)) {
      throw new DeimError('ERR_MODEL_INVALID', `${source}: tensor "${t.name}" has shape [${t.shape.join(',')}]; Triton needs dimensions >= 1 or -1 (dynamic)`, { input: source });
    }
  }
  // Batched when every tensor has a dynamic first axis; a model with fixed batch gets max_batch_size 0.
  const batched = tensors.every((t) => t.shape[0] === -1);
  if (!batched && tensors.some((t) => t.shape[0] === -1)) {
    throw new DeimError('ERR_MODEL_INVALID', `${source}: some tensors have a dynamic batch axis and some a fixed one (${tensors.map((t) => `${t.name} [${t.shape.join(',')}]`).join(', ')}); Triton batching needs all or none`, { input: source });
  }
  const dims = (t: TritonTensor) => (batched ? t.shape.slice(1) : [...t.shape]);
  const byName = (name: string, input: boolean) => tensors.find((t) => t.input === input && t.name === name)!;
  // One item's shape (a fixed batch axis aside too).
  const images = byName('images', true).shape.slice(1);
  if (images.length !== 3 || images[0] !== 3 || !(images[1]! > 0) || images[1] !== images[2]) {
    throw new DeimError('ERR_MODEL_NOT_DEIMV2', `${source}: "images" must be [3,S,S] with a fixed side S (batch axis aside), got [${images.join(',')}]`, { input: source });
  }
  const sizes = byName('orig_target_sizes', true).shape.slice(1);
  if (sizes.length !== 1 || sizes[0] !== 2) {
    throw new DeimError('ERR_MODEL_NOT_DEIMV2', `${source}: "orig_target_sizes" must be [2] (width, height; batch axis aside), got [${sizes.join(',')}]`, { input: source });
  }
  const ordered = (input: boolean, known: readonly string[]) => [
    ...known.map((n) => byName(n, input)),
    ...tensors.filter((t) => t.input === input && !known.includes(t.name)),
  ].map((t) => ({ name: t.name, data_type: tritonDataType(t.dtype, t.name, source), dims: dims(t) }));

  const maxBatchSize = batched ? checkInt(options.maxBatchSize, 'max batch size', 1, 1 << 20) : 0;
  const preferred = batched ? [...new Set(options.preferredBatchSizes ?? [maxBatchSize])].sort((a, b) => a - b) : [];
  for (const p of preferred) checkInt(p, 'preferred batch size', 1, maxBatchSize);
  const instances = checkInt(options.instances ?? 1, 'instances', 1, 1024);
  const gpus = options.gpus ?? [0];
  for (const g of gpus) checkInt(g, 'GPU index', 0, 1023);
  return {
    name: options.name,
    platform: options.platform,
    max_batch_size: maxBatchSize,
    input: ordered(true, INPUTS),
    output: ordered(false, OUTPUTS),
    ...(batched ? { dynamic_batching: { preferred_batch_size: preferred, max_queue_delay_microseconds: checkInt(options.maxQueueDelayUs ?? DEFAULT_QUEUE_DELAY_US, 'max queue delay (µs)', 0, 60_000_000) } } : {}),
    instance_group: [options.kind === 'gpu' ? { kind: 'KIND_GPU', count: instances, gpus: [...gpus] } : { kind: 'KIND_CPU', count: instances }],
    ...(options.cudaGraphs ? { optimization: { cuda: { graphs: true } } } : {}),
  };
}

function checkInt(value: number, what: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected an integer between ${min} and ${max} for the Triton ${what} but received ${String(value)}`, { input: String(value) });
  }
  return value;
}

/**
 * Triton refuses empty names, "..", and names with "/"; it skips folders starting with "." and
 * needs the folder name to equal the config's name. This package allows the portable subset:
 * letters, digits, "_", "-", "." (not first), at most 200 characters.
 */
export function checkModelName(name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$/.test(name)) {
    throw new DeimError('ERR_INVALID_ARGUMENT',
      `"${String(name)}" is not a usable Triton model name: use letters, digits, "_", "-" and "." (not first), at most 200 characters ` +
        '(Triton refuses empty names, ".." and "/", and skips folders starting with ".")', { input: String(name) });
  }
  return name;
}

/** A protobuf text-format string literal: printable ASCII as is, everything else as octal escapes. */
function quote(s: string): string {
  let out = '"';
  for (const byte of Buffer.from(s, 'utf8')) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += '\\\\';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return out + '"';
}

const list = (values: readonly number[]) => `[ ${values.join(', ')} ]`;

/** config.pbtxt: the config in protobuf text format (what Triton's TextFormat parser reads). */
export function configText(config: TritonModelConfig): string {
  const tensor = (t: TritonTensorConfig) => `  {\n    name: ${quote(t.name)}\n    data_type: ${t.data_type}\n    dims: ${list(t.dims)}\n  }`;
  const lines = [
    `name: ${quote(config.name)}`,
    `platform: ${quote(config.platform)}`,
    `max_batch_size: ${config.max_batch_size}`,
    `input [\n${config.input.map(tensor).join(',\n')}\n]`,
    `output [\n${config.output.map(tensor).join(',\n')}\n]`,
  ];
  if (config.dynamic_batching) {
    const d = config.dynamic_batching;
    lines.push(`dynamic_batching {\n  preferred_batch_size: ${list(d.preferred_batch_size)}\n  max_queue_delay_microseconds: ${d.max_queue_delay_microseconds}\n}`);
  }
  const group = (g: TritonModelConfig['instance_group'][number]) =>
    `  {\n    kind: ${g.kind}\n    count: ${g.count}\n${g.gpus ? `    gpus: ${list(g.gpus)}\n` : ''}  }`;
  lines.push(`instance_group [\n${config.instance_group.map(group).join(',\n')}\n]`);
  if (config.optimization) lines.push(`optimization {\n  cuda {\n    graphs: ${config.optimization.cuda.graphs}\n  }\n}`);
  return lines.join('\n') + '\n';
}
