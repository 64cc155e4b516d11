/**
 * Mixed precision for strongly typed TensorRT (precision comes from the graph's types), and the
 * same plan emulated in FP32 for measuring on the CPU.
 *
 * Every node gets a precision: compute nodes are FP16 unless a keep-FP32 rule matches;
 * data-movement nodes follow their inputs (no casts around a Reshape); integer/shape nodes are
 * untouched. Casts are placed only where an FP16 tensor meets an FP32 consumer or the reverse,
 * graph inputs and outputs stay float32.
 *
 * Emulation (`mode: 'emulate'`) builds the same plan with float32 types, but rounds every
 * tensor the FP16 graph would store in FP16 through Cast(float16) -> Cast(float32), and
 * rounds the FP16 weights, so onnxruntime on the CPU shows the rounding and overflow.
 */
import { DeimError } from '../errors.js';
import { DType, intAttr, type NodeProto } from './onnx-io.js';
import { floatValues, roundToFloat16, encodeValues, type GraphEditor } from './graph.js';

export type Precision = 'fp16' | 'fp32';

/** A reason to keep a node in FP32; the report lists which rule kept which nodes. */
export interface KeepRule {
  name: string;
  why: string;
  test: (node: NodeProto, graph: PlanContext) => boolean;
}

/** What a rule may ask about the graph around a node. */
export interface PlanContext {
  /** The nodes reading a tensor. */
  consumers: Map<string, NodeProto[]>;
}

const name = (n: NodeProto): string => n.name ?? '';

/**
 * The keep-FP32 set for DEIMv2 exports (names follow the PyTorch module paths the official
 * exporter writes). Measured on Atto/Femto with scripts/prepare-verify.js: see the report.
 */
export const DEIMV2_KEEP_FP32: readonly KeepRule[] = [
  {
    name: 'normalisation',
    why: 'LayerNorm mean/variance/rsqrt: squares overflow and variance loses digits in FP16',
    test: (n) => /\/norm\d*\//.test(name(n)) || ['ReduceMean', 'Pow', 'Sqrt', 'LayerNormalization'].includes(n.opType ?? ''),
  },
  { name: 'softmax', why: 'exp and the normalising sum', test: (n) => n.opType === 'Softmax' },
  {
    name: 'attention-logits',
    why: 'the Q.K^T product feeding a Softmax reaches 4.3e4 in Femto layers.2 self-attention (float16 max 65504; step 32 at that size)',
    test: (n, g) => n.opType === 'MatMul' && (n.output ?? []).some((o) => (g.consumers.get(o) ?? []).some((c) => c.opType === 'Softmax')),
  },
  {
    name: 'sampling',
    why: 'deformable-attention sampling coordinates and weights: pixel positions need more than 11 bits',
    test: (n) =>
      /\/cross_attn\/(sampling_offsets|attention_weights)\//.test(name(n)) ||
      /\/cross_attn\/[^/]+$/.test(name(n)) ||
      /\/GridSample(_\d+)?\/(coord|index|blend)\//.test(name(n)),
  },
  {
    name: 'query-selection',
    why: 'ReduceMax and TopK pick which encoder queries (and which final detections) survive: FP16 ties would change the choice',
    test: (n) => n.opType === 'TopK' || n.opType === 'ReduceMax' || n.opType === 'ArgMax',
  },
  {
    name: 'box-decoding',
    why: 'reference points, inverse sigmoid, distribution integral, quality head, top-k and the final scaling to pixels',
    test: (n) =>
      /^\/model\/decoder\/decoder\/[^/]+$/.test(name(n)) ||
      /^\/model\/decoder\/[^/]+$/.test(name(n)) ||
      /\/integral(_\d+)?\//.test(name(n)) ||
      /\/lqe_layers/.test(name(n)) ||
      /^\/postprocessor\//.test(name(n)) ||
      n.opType === 'Cast',
  },
];

/** Ops that move or select values without arithmetic: they run in whatever precision their input has. */
const FOLLOW_OPS = new Set([
  'Reshape', 'Transpose', 'Gather', 'GatherElements', 'GatherND', 'Slice', 'Concat', 'Split', 'Squeeze', 'Unsqueeze',
  'Flatten', 'Expand', 'Tile', 'Identity', 'Pad', 'MaxPool', 'Where', 'Relu', 'ReduceMax', 'Max', 'Min', 'Clip', 'TopK',
]);
export function isFollowOp(opType: string): boolean {
  return FOLLOW_OPS.has(opType);
}

/** Ops that read a float tensor of any type without arithmetic on it (no cast needed). */
const ANY_TYPE_OPS = new Set(['Shape', 'Size', 'Cast']);

/**
 * Ops whose output type is written in an attribute (a Constant's value, ConstantOfShape's value,
 * EyeLike's dtype): relabelling their output float16 would contradict the attribute, so they stay
 * float32 and their FP16 consumers read them through a Cast (which TensorRT folds).
 */
const ATTRIBUTE_TYPED_OPS = new Set(['Constant', 'ConstantOfShape', 'EyeLike', 'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike']);

/** Inputs that must stay float32 whatever the node's precision (Resize roi/scales). */
function fixedFloat32Input(node: NodeProto, index: number): boolean {
  return node.opType === 'Resize' && index > 0;
}

export interface PrecisionPlan {
  /** Node name -> precision, for nodes that read or write floats. */
  precision: Map<NodeProto, Precision>;
  /** Rule name -> node names it kept in FP32. */
  keptBy: Map<string, string[]>;
}

/**
 * Decides each node's precision. `keep` are the keep-FP32 rules ([] gives all-FP16);
 * `forceFp16`, when given, limits FP16 to those node names (for per-node sensitivity).
 */
export function planPrecision(ed: GraphEditor, keep: readonly KeepRule[], forceFp16?: Set<string>): PrecisionPlan {
  const precision = new Map<NodeProto, Precision>();
  const keptBy = new Map<string, string[]>();
  const tensorPrecision = new Map<string, Precision>();
  const isFloat = (t: string): boolean => ed.typeOf(t) === DType.FLOAT;
  const context: PlanContext = { consumers: ed.consumers() };
  for (const i of ed.graph.input ?? []) if (isFloat(i.name!)) tensorPrecision.set(i.name!, 'fp32');
  for (const node of ed.nodes) {
    const op = node.opType ?? '';
    const floatIns = (node.input ?? []).filter((t) => t && isFloat(t));
    const floatOuts = (node.output ?? []).filter((t) => t && isFloat(t));
    if (floatIns.length === 0 && floatOuts.length === 0) continue;
    const unknown = (node.output ?? []).find((t) => t && ed.typeOf(t) === undefined);
    if (unknown !== undefined) {
      throw new DeimError('ERR_PREPARE', `cannot tell the element type of "${unknown}" (output of ${op} node "${name(node)}"): the graph has no value_info for it; ` +
        'export with shape inference (onnx.shape_inference.infer_shapes) so each tensor carries its type');
    }
    let p: Precision;
    // Keep rules come before following: a selection op (ReduceMax, TopK) named by a rule stays FP32
    // even though it does no arithmetic.
    const rule = ANY_TYPE_OPS.has(op) || ATTRIBUTE_TYPED_OPS.has(op) || forceFp16 ? undefined : keep.find((r) => r.test(node, context));
    if (ANY_TYPE_OPS.has(op) || ATTRIBUTE_TYPED_OPS.has(op)) {
      p = 'fp32';
    } else if (rule) {
      let list = keptBy.get(rule.name);
      if (!list) keptBy.set(rule.name, (list = []));
      list.push(name(node));
      p = 'fp32';
    } else if (FOLLOW_OPS.has(op)) {
      // Precision of the activations (initialisers adapt); any FP32 activation wins.
      const acts = floatIns.filter((t) => !ed.initializers.has(t)).map((t) => tensorPrecision.get(t) ?? 'fp32');
      p = acts.length > 0 && acts.every((a) => a === 'fp16') ? 'fp16' : 'fp32';
    } else if (forceFp16) {
      p = forceFp16.has(name(node)) ? 'fp16' : 'fp32';
    } else {
      p = 'fp16';
    }
    precision.set(node, p);
    for (const o of floatOuts) tensorPrecision.set(o, op === 'Cast' ? 'fp32' : p);
  }
  return { precision, keptBy };
}

export interface PrecisionResult {
  fp16Nodes: number;
  fp32Nodes: number;
  casts: number;
  /** Weights converted (fp16) or rounded (emulate). */
  convertedInitializers: number;
}

/**
 * Applies a plan. 'fp16': real float16 types and weights, Casts at the boundaries.
 * 'emulate': float32 throughout, with every FP16-stored tensor rounded through float16.
 * The caller sorts the graph afterwards.
 */
export function applyPrecision(ed: GraphEditor, plan: PrecisionPlan, mode: 'fp16' | 'emulate'): PrecisionResult {
  const result: PrecisionResult = { fp16Nodes: 0, fp32Nodes: 0, casts: 0, convertedInitializers: 0 };
  const wasFloat = new Set<string>();
  for (const n of ed.nodes) for (const t of [...(n.input ?? []), ...(n.output ?? [])]) if (t && ed.typeOf(t) === DType.FLOAT) wasFloat.add(t);
  for (const i of ed.graph.input ?? []) if (ed.typeOf(i.name!) === DType.FLOAT) wasFloat.add(i.name!);

  /** Precision each float activation is stored in. */
  const stored = new Map<string, Precision>();
  for (const i of ed.graph.input ?? []) if (wasFloat.has(i.name!)) stored.set(i.name!, 'fp32');
  const halfWeights = new Map<string, string>();
  const castCache = new Map<string, string>();

  const castNode = (input: string, to: number, outBase: string): string => {
    result.casts++;
    return ed.addNode('Cast', `${outBase}/Cast`, [input], [outBase], [to], [intAttr('to', to)])[0]!;
  };
  /** The tensor `t` as the precision `want`, adding (or reusing) a cast. */
  const asPrecision = (t: string, want: Precision): string => {
    const have = stored.get(t) ?? 'fp32';
    if (have === want) return t;
    const key = `${t}|${want}`;
    const cached = castCache.get(key);
    if (cached) return cached;
    let out: string;
    if (mode === 'fp16') out = castNode(t, want === 'fp16' ? DType.FLOAT16 : DType.FLOAT, `${t}_${want}`);
    else if (want === 'fp16') out = castNode(castNode(t, DType.FLOAT16, `${t}_to_fp16`), DType.FLOAT, `${t}_fp16_rounded`);
    else out = t; // emulation: an fp16 value read as fp32 is already exact
    castCache.set(key, out);
    return out;
  };
  const halfWeight = (t: string): string => {
    const cached = halfWeights.get(t);
    if (cached) return cached;
    const src = ed.initializers.get(t)!;
    const values = floatValues(src);
    const copyName = ed.uniqueName(`${t}_${mode === 'fp16' ? 'fp16' : 'fp16_rounded'}`);
    if (mode === 'fp16') {
      ed.addInitializer({ name: copyName, dataType: DType.FLOAT16, dims: src.dims, rawData: encodeValues(DType.FLOAT16, values) });
    } else {
      const rounded = Float32Array.from(values, roundToFloat16);
      ed.addInitializer({ name: copyName, dataType: DType.FLOAT, dims: src.dims, rawData: new Uint8Array(rounded.buffer) });
    }
    result.convertedInitializers++;
    halfWeights.set(t, copyName);
    return copyName;
  };

  for (const node of [...ed.nodes]) {
    const p = plan.precision.get(node);
    if (!p) continue;
    if (p === 'fp16') result.fp16Nodes++;
    else result.fp32Nodes++;
    const op = node.opType ?? '';
    if (!ANY_TYPE_OPS.has(op)) {
      node.input = (node.input ?? []).map((t, k) => {
        if (!t || !wasFloat.has(t) || fixedFloat32Input(node, k)) return t;
        if (ed.initializers.has(t)) return p === 'fp16' ? halfWeight(t) : t;
        return asPrecision(t, p);
      });
    }
    const outs = (node.output ?? []).filter((t) => t && wasFloat.has(t));
    const outPrecision: Precision = op === 'Cast' ? 'fp32' : p;
    for (const o of outs) {
      stored.set(o, outPrecision);
      if (outPrecision !== 'fp16') continue;
      if (mode === 'fp16') {
        ed.setType(o, DType.FLOAT16);
      } else if (!FOLLOW_OPS.has(op)) {
        // Computed in FP32 here, stored in FP16 there: the node writes a raw tensor that is rounded into `o`.
        const raw = ed.uniqueName(`${o}_fp32_raw`);
        node.output = node.output!.map((x) => (x === o ? raw : x));
        ed.setType(raw, DType.FLOAT);
        const half = castNode(raw, DType.FLOAT16, `${o}_to_fp16`);
        result.casts++;
        ed.nodes.push({ opType: 'Cast', name: ed.uniqueName(`${o}/Cast_back`), input: [half], output: [o], attribute: [intAttr('to', DType.FLOAT)], domain: '' });
      }
    }
  }

  // Graph outputs keep float32.
  if (mode === 'fp16') {
    for (const out of ed.graph.output ?? []) {
      const t = out.name!;
      if (stored.get(t) !== 'fp16') continue;
      const renamed = ed.uniqueName(`${t}_fp16`);
      ed.setType(renamed, DType.FLOAT16);
      for (const n of ed.nodes) {
        n.output = (n.output ?? []).map((x) => (x === t ? renamed : x));
        n.input = (n.input ?? []).map((x) => (x === t ? renamed : x));
      }
      result.casts++;
      ed.nodes.push({ opType: 'Cast', name: ed.uniqueName(`${t}/Cast_output`), input: [renamed], output: [t], attribute: [intAttr('to', DType.FLOAT)], domain: '' });
      ed.setType(t, DType.FLOAT);
    }
    ed.syncValueInfoTypes();
  }
  ed.pruneInitializers();
  return result;
}
