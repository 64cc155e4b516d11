/**
 * A small editing layer over an ONNX GraphProto: who produces and consumes each tensor, fresh
 * readable names, deduplicated constant initialisers, element types, and a topological order
 * to restore after nodes were added anywhere.
 */
import { createHash } from 'node:crypto';
import { DeimError } from '../errors.js';
import { DType, type AttributeProto, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from './onnx-io.js';

export class GraphEditor {
  readonly graph: GraphProto;
  /** Element type (TensorProto.DataType) of every tensor whose type is known. */
  private readonly types = new Map<string, number>();
  private readonly usedNames = new Set<string>();
  private readonly constantByKey = new Map<string, string>();
  readonly initializers = new Map<string, TensorProto>();

  constructor(readonly model: ModelProto) {
    if (!model.graph) throw new DeimError('ERR_MODEL_INVALID', 'The model has no graph');
    this.graph = model.graph;
    this.graph.node ??= [];
    this.graph.initializer ??= [];
    this.graph.valueInfo ??= [];
    for (const t of this.graph.initializer) {
      this.initializers.set(t.name!, t);
      this.types.set(t.name!, t.dataType!);
      this.usedNames.add(t.name!);
    }
    for (const v of [...(this.graph.input ?? []), ...(this.graph.output ?? []), ...this.graph.valueInfo]) {
      this.usedNames.add(v.name!);
      const elem = v.type?.tensorType?.elemType;
      if (elem) this.types.set(v.name!, elem);
    }
    for (const n of this.graph.node) {
      if (n.name) this.usedNames.add(n.name);
      for (const o of n.output ?? []) this.usedNames.add(o);
    }
    this.inferMissingTypes();
  }

  get nodes(): NodeProto[] {
    return this.graph.node!;
  }

  /** A tensor or node name not used yet, derived from `base`. */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.usedNames.has(name); i++) name = `${base}_${i}`;
    this.usedNames.add(name);
    return name;
  }

  typeOf(tensor: string): number | undefined {
    return this.types.get(tensor);
  }

  /** Static dims from value_info (undefined for a dynamic axis), or undefined when unknown. */
  shapeOf(tensor: string): Array<number | undefined> | undefined {
    const v = [...(this.graph.input ?? []), ...this.graph.valueInfo!, ...(this.graph.output ?? [])].find((x) => x.name === tensor);
    const dims = v?.type?.tensorType?.shape?.dim;
    if (!dims) return undefined;
    return dims.map((d) => {
      const n = d.dimValue === undefined || d.dimValue === null ? 0 : Number(d.dimValue);
      return n > 0 ? n : undefined;
    });
  }

  setType(tensor: string, elemType: number): void {
    this.types.set(tensor, elemType);
  }

  /** Map from tensor name to the node producing it (graph inputs and initialisers have none). */
  producers(): Map<string, NodeProto> {
    const m = new Map<string, NodeProto>();
    for (const n of this.nodes) for (const o of n.output ?? []) if (o) m.set(o, n);
    return m;
  }

  /** Map from tensor name to the nodes reading it. */
  consumers(): Map<string, NodeProto[]> {
    const m = new Map<string, NodeProto[]>();
    for (const n of this.nodes) {
      for (const i of n.input ?? []) {
        if (!i) continue;
        let list = m.get(i);
        if (!list) m.set(i, (list = []));
        if (!list.includes(n)) list.push(n);
      }
    }
    return m;
  }

  graphOutputNames(): Set<string> {
    return new Set((this.graph.output ?? []).map((o) => o.name!));
  }

  /**
   * Adds a node (appended; call `sortTopologically()` when done) and returns its output names.
   * `outputs` are base names made unique; `outTypes` records their element types.
   */
  addNode(opType: string, name: string, inputs: string[], outputs: string[], outTypes: number[], attributes: AttributeProto[] = []): string[] {
    const outNames = outputs.map((o) => this.uniqueName(o));
    outNames.forEach((o, i) => this.types.set(o, outTypes[i]!));
    this.nodes.push({ opType, name: this.uniqueName(name), input: inputs, output: outNames, attribute: attributes, domain: '' });
    return outNames;
  }

  /** An initialiser holding these values; identical constants are stored once. */
  constant(base: string, dataType: number, dims: number[], values: ArrayLike<number>): string {
    const raw = encodeValues(dataType, values);
    const key = `${dataType}|${dims.join(',')}|${createHash('sha1').update(raw).digest('hex')}`;
    const existing = this.constantByKey.get(key);
    if (existing) return existing;
    const name = this.uniqueName(base);
    this.addInitializer({ name, dataType, dims, rawData: raw });
    this.constantByKey.set(key, name);
    return name;
  }

  addInitializer(t: TensorProto): void {
    this.graph.initializer!.push(t);
    this.initializers.set(t.name!, t);
    this.types.set(t.name!, t.dataType!);
  }

  /** Scalars and 1-D constants, the common cases. */
  f32(base: string, values: number[], dims: number[] = values.length === 1 ? [] : [values.length]): string {
    return this.constant(base, DType.FLOAT, dims, values);
  }

  i64(base: string, values: number[], dims: number[] = [values.length]): string {
    return this.constant(base, DType.INT64, dims, values);
  }

  /** Removes nodes (by identity) from the graph. */
  removeNodes(dead: Set<NodeProto>): void {
    this.graph.node = this.nodes.filter((n) => !dead.has(n));
  }

  /** Drops initialisers that no node reads and that are not graph outputs. */
  pruneInitializers(): number {
    const read = new Set<string>();
    for (const n of this.nodes) for (const i of n.input ?? []) read.add(i);
    for (const o of this.graph.output ?? []) read.add(o.name!);
    const before = this.graph.initializer!.length;
    this.graph.initializer = this.graph.initializer!.filter((t) => read.has(t.name!));
    for (const name of [...this.initializers.keys()]) if (!read.has(name)) this.initializers.delete(name);
    return before - this.graph.initializer.length;
  }

  /**
   * Puts nodes in an order where every input is produced before it is read (ONNX requires it).
   * Stable: nodes keep their relative order where the dependencies allow, so diffs stay readable.
   */
  sortTopologically(): void {
    const available = new Set<string>(['']);
    for (const t of this.graph.initializer!) available.add(t.name!);
    for (const i of this.graph.input ?? []) available.add(i.name!);
    const pending = [...this.nodes];
    const order: NodeProto[] = [];
    while (pending.length > 0) {
      let progressed = false;
      for (let k = 0; k < pending.length; k++) {
        const n = pending[k]!;
        if ((n.input ?? []).every((i) => available.has(i))) {
          order.push(n);
          for (const o of n.output ?? []) available.add(o);
          pending.splice(k, 1);
          k--;
          progressed = true;
        }
      }
      if (!progressed) {
        const n = pending[0]!;
        const missing = (n.input ?? []).filter((i) => !available.has(i));
        throw new DeimError('ERR_PREPARE', `The graph has a cycle or a dangling input: node ${n.name} reads ${missing.join(', ')}`);
      }
    }
    this.graph.node = order;
  }

  /** Writes the known element type into every value_info entry (after a precision change). */
  syncValueInfoTypes(): void {
    for (const v of [...this.graph.valueInfo!, ...(this.graph.output ?? [])]) {
      const t = this.types.get(v.name!);
      if (t && v.type?.tensorType) v.type.tensorType.elemType = t;
    }
  }

  /**
   * Element types for tensors the exporter gave no value_info: propagated through the ops
   * whose output type follows from their inputs or attributes.
   */
  private inferMissingTypes(): void {
    for (const n of this.nodes) {
      const outs = n.output ?? [];
      if (outs.every((o) => !o || this.types.has(o))) continue;
      const firstIn = this.types.get(n.input?.[0] ?? '');
      let t: number | undefined;
      switch (n.opType) {
        case 'Shape':
        case 'Size':
        case 'NonZero':
        case 'ArgMax':
        case 'ArgMin':
          t = DType.INT64;
          break;
        case 'Equal': case 'Less': case 'Greater': case 'LessOrEqual': case 'GreaterOrEqual':
        case 'And': case 'Or': case 'Not': case 'IsNaN': case 'IsInf':
          t = DType.BOOL;
          break;
        case 'Cast':
          t = Number(n.attribute?.find((a) => a.name === 'to')?.i ?? 0);
          break;
        case 'Constant': {
          const v = n.attribute?.find((a) => a.name === 'value')?.t;
          t = v?.dataType ?? undefined;
          break;
        }
        case 'ConstantOfShape':
          // The value attribute's type; float32 zero when it has none.
          t = n.attribute?.find((a) => a.name === 'value')?.t?.dataType ?? DType.FLOAT;
          break;
        case 'EyeLike': case 'RandomNormalLike': case 'RandomUniformLike': case 'Bernoulli': {
          const dtype = n.attribute?.find((a) => a.name === 'dtype')?.i;
          t = dtype !== undefined && dtype !== null && Number(dtype) !== 0 ? Number(dtype) : firstIn;
          break;
        }
        case 'Where':
          t = this.types.get(n.input?.[1] ?? '');
          break;
        case 'CastLike':
          t = this.types.get(n.input?.[1] ?? '');
          break;
        case 'OneHot':
          t = this.types.get(n.input?.[2] ?? '');
          break;
        default:
          // Only ops whose (first) output has their first input's type by definition; for any
          // other op the type stays unknown rather than guessed (the FP16 plan refuses it).
          t = SAME_TYPE_AS_FIRST_INPUT.has(n.opType ?? '') ? firstIn : undefined;
      }
      if (t && !this.types.has(outs[0]!)) this.types.set(outs[0]!, t);
      for (const [k, o] of outs.entries()) {
        if (k === 0 || !o || this.types.has(o)) continue;
        const second = SECOND_OUTPUT_TYPES[n.opType ?? ''];
        if (k === 1 && second !== undefined) this.types.set(o, second);
        else if (t && SAME_TYPE_OUTPUTS.has(n.opType ?? '')) this.types.set(o, t);
      }
    }
  }
}

/** Ops whose output 0 has the type of input 0 (elementwise math, layout, reductions, pooling...). */
const SAME_TYPE_AS_FIRST_INPUT = new Set([
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Sigmoid', 'Tanh', 'Relu',
  'LeakyRelu', 'Elu', 'Selu', 'Softplus', 'Softsign', 'HardSigmoid', 'HardSwish', 'Gelu', 'Erf', 'Sin', 'Cos', 'Tan',
  'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Floor', 'Ceil', 'Round', 'Sign', 'Clip', 'Min', 'Max', 'Mean', 'Sum', 'Mod',
  'PRelu', 'MatMul', 'Gemm', 'Conv', 'ConvTranspose', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization',
  'GroupNormalization', 'LpNormalization', 'MeanVarianceNormalization', 'Softmax', 'LogSoftmax', 'Hardmax', 'Reshape',
  'Transpose', 'Flatten', 'Squeeze', 'Unsqueeze', 'Expand', 'Tile', 'Concat', 'Split', 'Slice', 'Gather', 'GatherElements',
  'GatherND', 'ScatterND', 'ScatterElements', 'Pad', 'Identity', 'Resize', 'Upsample', 'MaxPool', 'AveragePool',
  'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd',
  'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare', 'CumSum', 'Einsum', 'DepthToSpace',
  'SpaceToDepth', 'Range', 'Trilu', 'GridSample', 'Dropout', 'TopK', 'Compress', 'ReverseSequence', 'Unique', 'Det',
  'Neg', 'BitShift', 'Not',
]);

/** The second output's type where it is fixed by the op (indices, masks, LayerNormalization's stash). */
const SECOND_OUTPUT_TYPES: Record<string, number> = { TopK: DType.INT64, MaxPool: DType.INT64, Dropout: DType.BOOL, LayerNormalization: DType.FLOAT };

/** Ops whose extra outputs have the type of output 0. */
const SAME_TYPE_OUTPUTS = new Set(['Split', 'BatchNormalization']);

/** Little-endian raw bytes of `values` in the given ONNX element type. */
export function encodeValues(dataType: number, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  switch (dataType) {
    case DType.FLOAT:
      return new Uint8Array(Float32Array.from(values).buffer);
    case DType.INT64: {
      const a = new BigInt64Array(n);
      for (let i = 0; i < n; i++) a[i] = BigInt(values[i]!);
      return new Uint8Array(a.buffer);
    }
    case DType.INT32:
      return new Uint8Array(Int32Array.from(values).buffer);
    case DType.FLOAT16: {
      const a = new Uint16Array(n);
      for (let i = 0; i < n; i++) a[i] = float32ToFloat16Bits(values[i]!);
      return new Uint8Array(a.buffer);
    }
    default:
      throw new DeimError('ERR_PREPARE', `Cannot encode constants of ONNX type ${dataType}`);
  }
}

/** The float32 values of a FLOAT initialiser (raw_data or float_data). */
export function floatValues(t: TensorProto): Float32Array {
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(t.floatData ?? []);
}

/** The integer values of an INT64/INT32 initialiser. */
export function intValues(t: TensorProto): number[] {
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData);
    if (t.dataType === DType.INT64) return Array.from(new BigInt64Array(copy.buffer, 0, copy.length / 8), Number);
    return Array.from(new Int32Array(copy.buffer, 0, copy.length / 4));
  }
  if (t.dataType === DType.INT64) return (t.int64Data ?? []).map(Number);
  return t.int32Data ?? [];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * IEEE 754 binary16 bits of a float32, rounding to nearest even; overflow becomes ±Infinity,
 * NaN stays NaN, tiny values become subnormals or ±0 (what a Cast to float16 does).
 */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && (half & 1))) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1))) half++; // may carry into the exponent: correct
  return sign | half;
}

/** The float32 value of binary16 bits. */
export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Rounds a float32 through float16 and back. */
export function roundToFloat16(value: number): number {
  return float16BitsToFloat32(float32ToFloat16Bits(value));
}
