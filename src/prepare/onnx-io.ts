/**
 * Reading and writing ONNX models from TypeScript, through the protobufjs types that the
 * onnx-proto package generates from onnx.proto (ONNX 1.10, IR 8: what opset-17 exports use).
 * No Python, no schema file in this repository.
 */
import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { DeimError, errorMessage } from '../errors.js';

export const onnx = onnxProto.onnx;
export type ModelProto = OnnxTypes.ModelProto;
export type GraphProto = OnnxTypes.IGraphProto;
export type NodeProto = OnnxTypes.INodeProto;
export type TensorProto = OnnxTypes.ITensorProto;
export type AttributeProto = OnnxTypes.IAttributeProto;
export type ValueInfoProto = OnnxTypes.IValueInfoProto;

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
    model = onnx.ModelProto.decode(bytes);
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
    (t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0,
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
  const bytes = onnx.ModelProto.encode(model).finish();
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
  return onnx.ModelProto.encode(model).finish();
}

/** A deep copy, so one loaded model can be prepared several ways. */
export function cloneModel(model: ModelProto): ModelProto {
  return onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
}

/** An attribute's value as a number or a string, or undefined when the node lacks it. */
export function attr(node: NodeProto, name: string): number | string | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  if (!a) return undefined;
  if (a.type === onnx.AttributeProto.AttributeType.STRING) return Buffer.from(a.s ?? []).toString('utf8');
  if (a.type === onnx.AttributeProto.AttributeType.FLOAT) return a.f ?? 0;
  if (a.type === onnx.AttributeProto.AttributeType.INT) return Number(a.i ?? 0);
  return undefined;
}

export function intAttr(name: string, value: number): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

export function intsAttr(name: string, values: number[]): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: values };
}
