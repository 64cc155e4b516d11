/**
 * The oracle for Triton's config.pbtxt: protoc parses the text strictly against the fields of
 * Triton's model_config.proto (test/fixtures/triton/model_config_subset.proto: unknown fields, bad
 * enums, syntax errors fail), and protobufjs decodes the bytes it encodes.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import protobuf from 'protobufjs';
import { ROOT } from './paths.js';

const PROTO_DIR = path.join(ROOT, 'test', 'fixtures', 'triton');
const PROTO = 'model_config_subset.proto';
export const HAS_PROTOC = spawnSync('protoc', ['--version']).status === 0;
export const NO_PROTOC = 'protoc not installed (apt-get install -y protobuf-compiler; .ci/run does): config.pbtxt text-format parsing skipped';

/** The addon's dtype names -> Triton's (the oracle's own table, not the package's). */
export const TRITON_TYPES: Record<string, string> = { float32: 'TYPE_FP32', float16: 'TYPE_FP16', int64: 'TYPE_INT64', int32: 'TYPE_INT32', bool: 'TYPE_BOOL', uint8: 'TYPE_UINT8' };

export interface TensorConfig { name: string; data_type: string; dims: number[] }
export interface Decoded {
  name: string;
  platform: string;
  max_batch_size: number;
  input: TensorConfig[];
  output: TensorConfig[];
  instance_group: Array<{ name: string; kind: string; count: number; gpus: number[] }>;
  dynamic_batching?: { preferred_batch_size: number[]; max_queue_delay_microseconds: number } | null;
  optimization?: { cuda?: { graphs: boolean } } | null;
}

let modelConfig: protobuf.Type | undefined;

/** config.pbtxt text as Triton would read it; throws with protoc's complaint when it refuses the text. */
export function parseConfig(text: string): Decoded {
  modelConfig ??= new protobuf.Root().loadSync(path.join(PROTO_DIR, PROTO), { keepCase: true }).lookupType('inference.ModelConfig');
  const r = spawnSync('protoc', [`-I${PROTO_DIR}`, '--encode=inference.ModelConfig', PROTO], { input: text });
  if (r.status !== 0) throw new Error(`protoc refused config.pbtxt: ${r.stderr.toString()}\n${text}`);
  return modelConfig.toObject(modelConfig.decode(r.stdout), { enums: String, longs: Number, defaults: true, keepCase: true } as protobuf.IConversionOptions) as unknown as Decoded;
}
