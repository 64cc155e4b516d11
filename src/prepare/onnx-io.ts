/**
 * Reading and writing ONNX models from TypeScript, through the protobufjs code that the
 * onnx-proto package generates from onnx.proto (ONNX 1.10, IR 8: what opset-17 exports use).
 * No Python, no schema file in this repository.
 *
 * The message types below are this package's own description of the fields it uses, so the
 * published .d.ts never refer to onnx-proto (whose declarations need protobufjs' global `Long`
 * and do not compile for a strict user without skipLibCheck). onnx-proto is used at run time only,
 * and its types only inside this file, where messages are encoded and decoded.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { DeimError, errorMessage } from '../errors.js';

const proto = onnxProto.onnx;

/** A 64-bit integer field as protobufjs decodes it: a number, or a Long object beyond 2^53. */
export type Int64 = number | { low: number; high: number; unsigned: boolean; toNumber(): number };
/** Optional fields read as protobufjs leaves them: absent, null, or the value. */
type Opt<T> = T | null | undefined;

export interface OperatorSetIdProto {
  domain?: Opt<string>;
  version?: Opt<Int64>;
}
export interface StringStringEntryProto {
  key?: Opt<string>;
  value?: Opt<string>;
}
export interface TensorShapeDimension {
  dimValue?: Opt<Int64>;
  dimParam?: Opt<string>;
  denotation?: Opt<string>;
}
export interface TypeProto {
  tensorType?: Opt<{ elemType?: Opt<number>; shape?: Opt<{ dim?: Opt<TensorShapeDimension[]> }> }>;
  denotation?: Opt<string>;
}
export interface ValueInfoProto {
  name?: Opt<string>;
  type?: Opt<TypeProto>;
  docString?: Opt<string>;
}
export interface TensorProto {
  dims?: Opt<Int64[]>;
  dataType?: Opt<number>;
  floatData?: Opt<number[]>;
  int32Data?: Opt<number[]>;
  stringData?: Opt<Uint8Array[]>;
  int64Data?: Opt<Int64[]>;
  name?: Opt<string>;
  docString?: Opt<string>;
  rawData?: Opt<Uint8Array>;
  externalData?: Opt<StringStringEntryProto[]>;
  dataLocation?: Opt<number>;
  doubleData?: Opt<number[]>;
  uint64Data?: Opt<Int64[]>;
}
export interface AttributeProto {
  name?: Opt<string>;
  refAttrName?: Opt<string>;
  docString?: Opt<string>;
  type?: Opt<number>;
  f?: Opt<number>;
  i?: Opt<Int64>;
  s?: Opt<Uint8Array>;
  t?: Opt<TensorProto>;
  g?: Opt<GraphProto>;
  floats?: Opt<number[]>;
  ints?: Opt<Int64[]>;
  strings?: Opt<Uint8Array[]>;
  tensors?: Opt<TensorProto[]>;
  graphs?: Opt<GraphProto[]>;
}
export interface NodeProto {
  input?: Opt<string[]>;
  output?: Opt<string[]>;
  name?: Opt<string>;
  opType?: Opt<string>;
  domain?: Opt<string>;
  attribute?: Opt<AttributeProto[]>;
  docString?: Opt<string>;
}
export interface GraphProto {
  node?: Opt<NodeProto[]>;
  name?: Opt<string>;
  initializer?: Opt<TensorProto[]>;
  docString?: Opt<string>;
  input?: Opt<ValueInfoProto[]>;
  output?: Opt<ValueInfoProto[]>;
  valueInfo?: Opt<ValueInfoProto[]>;
}
export interface ModelProto {
  irVersion?: Opt<Int64>;
  opsetImport?: Opt<OperatorSetIdProto[]>;
  producerName?: Opt<string>;
  producerVersion?: Opt<string>;
  domain?: Opt<string>;
  modelVersion?: Opt<Int64>;
  docString?: Opt<string>;
  graph?: Opt<GraphProto>;
  metadataProps?: Opt<StringStringEntryProto[]>;
}

/** ONNX enum values used here (onnx.proto's AttributeProto.AttributeType and TensorProto.DataLocation). */
export const AttributeType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;
export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

/** Decodes and encodes ModelProto messages (for tests and tools that inspect models). */
export const onnx: { ModelProto: { decode(bytes: Uint8Array): ModelProto; encode(model: ModelProto): { finish(): Uint8Array } } } = {
  ModelProto: {
    decode: (bytes) => decodeModelBytes(bytes),
    encode: (model) => ({ finish: () => encodeModel(model) }),
  },
};

function decodeModelBytes(bytes: Uint8Array): ModelProto {
  return proto.ModelProto.decode(bytes) as unknown as ModelProto;
}

/** TensorProto.DataType values used here. */
export const DType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

/**
 * Decodes an ONNX file and checks that it is a usable, self-contained model.
 * Throws DeimError ERR_MODEL_NOT_FOUND / ERR_MODEL_INVALID naming the file.
 *
 * @example const model = loadModel('models/deimv2_hgnetv2_atto_coco.onnx');
 */
export function loadModel(file: string): ModelProto {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_FS_FILE_TOO_LARGE') {
      // A protobuf message cannot exceed 2 GiB: larger ONNX models keep their weights as external data.
      throw new DeimError('ERR_INPUT_TOO_LARGE', `Cannot read ONNX model ${file}: the file is over 2 GiB, more than one ONNX (protobuf) file can hold; export it with its weights as external data`, { input: file, cause: e });
    }
    throw new DeimError(code === 'ENOENT' ? 'ERR_MODEL_NOT_FOUND' : 'ERR_MODEL_INVALID', `Cannot read ONNX model ${file}: ${errorMessage(e)}`, { input: file, cause: e });
  }
  if (bytes.length === 0) throw new DeimError('ERR_MODEL_INVALID', `ONNX model ${file} is empty`, { input: file });
  let model: ModelProto;
  try {
    model = decodeModelBytes(bytes);
  } catch (e) {
    throw new DeimError('ERR_MODEL_INVALID', `${file} is not a valid ONNX model (corrupt or truncated protobuf: ${errorMessage(e)})`, { input: file, cause: e });
  }
  const graph = model.graph;
  // Random bytes sometimes decode as an (almost) empty message: insist on a real graph.
  if (!graph || !graph.node || graph.node.length === 0 || !graph.output || graph.output.length === 0) {
    throw new DeimError('ERR_MODEL_INVALID', `${file} is not a valid ONNX model (no graph, nodes or outputs)`, { input: file });
  }
  const opset = defaultOpset(model);
  if (opset === undefined) throw new DeimError('ERR_MODEL_INVALID', `${file} has no default-domain opset import`, { input: file });
  const external = (graph.initializer ?? []).filter(
    (t) => t.dataLocation === DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0,
  );
  if (external.length > 0) {
    throw new DeimError(
      'ERR_PREPARE',
      `${file} keeps ${external.length} weight tensor(s) in external data files (first: ${external[0]!.name}); ` +
        'deimv2 prepare needs a self-contained model: re-export it without external data',
      { input: file },
    );
  }
  return model;
}

/** The version of the default ("" or "ai.onnx") opset the model imports. */
export function defaultOpset(model: ModelProto): number | undefined {
  const imp = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return imp?.version === undefined || imp.version === null ? undefined : Number(imp.version);
}

/**
 * Encodes and writes a model. Writes to a temporary file beside the target and renames it,
 * so a failed write never leaves a half-written model under the final name.
 * Throws DeimError ERR_OUTPUT_WRITE naming the path.
 */
export function saveModel(model: ModelProto, file: string): number {
  const bytes = encodeModel(model);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was written
    }
    throw new DeimError('ERR_OUTPUT_WRITE', `Cannot write the prepared model to ${file}: ${errorMessage(e)}`, { input: file, cause: e });
  }
  return bytes.length;
}

/** The model as bytes (for onnxruntime sessions made straight from memory). */
export function encodeModel(model: ModelProto): Uint8Array {
  // The fields above are the generated ones, with Int64 standing for protobufjs' number | Long.
  return proto.ModelProto.encode(model as unknown as OnnxTypes.IModelProto).finish();
}

/** A deep copy, so one loaded model can be prepared several ways. */
export function cloneModel(model: ModelProto): ModelProto {
  return decodeModelBytes(encodeModel(model));
}

/** An attribute's value as a number or a string, or undefined when the node lacks it. */
export function attr(node: NodeProto, name: string): number | string | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a) return undefined;
  if (a.type === AttributeType.STRING) return Buffer.from(a.s ?? []).toString('utf8');
  if (a.type === AttributeType.FLOAT) return a.f ?? 0;
  if (a.type === AttributeType.INT) return Number(a.i ?? 0);
  return undefined;
}

export function intAttr(name: string, value: number): AttributeProto {
  return { name, type: AttributeType.INT, i: value };
}

export function intsAttr(name: string, values: number[]): AttributeProto {
  return { name, type: AttributeType.INTS, ints: values };
}
