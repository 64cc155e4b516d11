/**
 * Rewrites ONNX GridSample (bilinear, zeros padding, align_corners 0) into standard ops that
 * TensorRT implements well: coordinate unnormalisation, Floor, four corner weights masked to
 * zero outside the map, one GatherElements on the flattened map, and a weighted sum.
 *
 * Why: TensorRT 10.14 / 11.1 miscompile this GridSample in DEIMv2 decoders
 * (https://github.com/NVIDIA/TensorRT/issues/4813), and the gather form is what the D-FINE
 * TensorRT deployments use instead.
 *
 * Shapes: X [N, C, H, W], grid [N, Ho, Wo, 2] -> Y [N, C, Ho, Wo]. In DEIMv2's deformable
 * attention N is batch*heads, Ho the queries and Wo the sampling points. N, Ho, Wo are taken
 * from the runtime shapes (dynamic batch); H, W and C are constants when value_info gives them
 * statically, Shape ops otherwise.
 *
 * Node roles are part of the names (`<GridSample name>/coord/...`, `/index/`, `/gather/`,
 * `/blend/`) so the mixed-precision plan can keep coordinates and weights in FP32.
 */
import { DType, attr, intAttr, type NodeProto } from './onnx-io.js';
import type { GraphEditor } from './graph.js';

export interface GridSampleRewrite {
  /** Names of the GridSample nodes that were replaced. */
  rewritten: string[];
  /** One line per GridSample left alone, naming the node and why. */
  warnings: string[];
}

/** Replaces every supported GridSample in the graph; the caller re-sorts the graph after. */
export function rewriteGridSamples(ed: GraphEditor): GridSampleRewrite {
  const result: GridSampleRewrite = { rewritten: [], warnings: [] };
  const dead = new Set<NodeProto>();
  for (const node of [...ed.nodes]) {
    if (node.opType !== 'GridSample' || (node.domain && node.domain !== 'ai.onnx')) continue;
    const why = unsupportedReason(ed, node);
    if (why) {
      result.warnings.push(`GridSample ${node.name || node.output?.[0]} left unchanged: ${why}`);
      continue;
    }
    emitGatherSampling(ed, node);
    dead.add(node);
    result.rewritten.push(node.name || node.output![0]!);
  }
  ed.removeNodes(dead);
  return result;
}

function unsupportedReason(ed: GraphEditor, node: NodeProto): string | undefined {
  const mode = attr(node, 'mode') ?? 'bilinear';
  const padding = attr(node, 'padding_mode') ?? 'zeros';
  const alignCorners = attr(node, 'align_corners') ?? 0;
  // opset 20 renamed "bilinear" to "linear"; the sampling is the same.
  if (mode !== 'bilinear' && mode !== 'linear') return `mode=${mode} (only bilinear is rewritten)`;
  if (padding !== 'zeros') return `padding_mode=${padding} (only zeros is rewritten)`;
  if (alignCorners !== 0) return `align_corners=${alignCorners} (only 0 is rewritten)`;
  const type = ed.typeOf(node.input?.[0] ?? '');
  if (type !== undefined && type !== DType.FLOAT) return `input element type ${type} (only float32 is rewritten)`;
  const rank = ed.shapeOf(node.input![0]!)?.length;
  if (rank !== undefined && rank !== 4) return `input rank ${rank} (only 4-D is rewritten)`;
  return undefined;
}

function emitGatherSampling(ed: GraphEditor, gs: NodeProto): void {
  const base = gs.name || gs.output![0]!;
  const [x, grid] = [gs.input![0]!, gs.input![1]!];
  const out = gs.output![0]!;
  const F = DType.FLOAT;
  const I32 = DType.INT32;
  const I64 = DType.INT64;
  /** Adds a one-output node named `<base>/<role>/<what>` and returns its output. */
  const op = (role: string, what: string, opType: string, inputs: string[], type: number, attributes = [] as ReturnType<typeof intAttr>[]): string =>
    ed.addNode(opType, `${base}/${role}/${what}`, inputs, [`${base}/${role}/${what}_output`], [type], attributes)[0]!;

  const one = ed.f32('gs_one', [1]);
  const zero = ed.f32('gs_zero', [0]);
  const half = ed.f32('gs_half', [0.5]);

  // Map sizes: constants when static, runtime Shape otherwise.
  const dims = ed.shapeOf(x);
  const [cStatic, hStatic, wStatic] = [dims?.[1], dims?.[2], dims?.[3]];
  const sizeOf = (axis: number, name: string, value: number | undefined): { f: string; max: string; i32: string; i64: string } => {
    if (value !== undefined) {
      return {
        f: ed.f32(`gs_${name}_${value}`, [value]),
        max: ed.f32(`gs_${name}_max_${value - 1}`, [value - 1]),
        i32: ed.constant(`gs_${name}_${value}_i32`, I32, [], [value]),
        i64: ed.i64(`gs_${name}_${value}_i64`, [value]),
      };
    }
    const i64 = op('coord', `${name}_shape`, 'Shape', [x], I64, [intAttr('start', axis), intAttr('end', axis + 1)]);
    const f = op('coord', `${name}_float`, 'Cast', [i64], F, [intAttr('to', F)]);
    return { f, max: op('coord', `${name}_max`, 'Sub', [f, one], F), i32: op('index', `${name}_int`, 'Cast', [i64], I32, [intAttr('to', I32)]), i64 };
  };
  const W = sizeOf(3, 'width', wStatic);
  const H = sizeOf(2, 'height', hStatic);

  // Pixel coordinates: x = ((gx + 1) * W - 1) / 2 (align_corners 0), as onnxruntime computes it.
  const unnormalise = (axisIndex: number, name: string, size: string): string => {
    const g = op('coord', `${name}_grid`, 'Gather', [grid, ed.constant(`gs_index_${axisIndex}`, I64, [], [axisIndex])], F, [intAttr('axis', 3)]);
    const plusOne = op('coord', `${name}_plus_one`, 'Add', [g, one], F);
    const scaled = op('coord', `${name}_scaled`, 'Mul', [plusOne, size], F);
    const minusOne = op('coord', `${name}_minus_one`, 'Sub', [scaled, one], F);
    return op('coord', `${name}_pixel`, 'Mul', [minusOne, half], F);
  };
  const px = unnormalise(0, 'x', W.f);
  const py = unnormalise(1, 'y', H.f);

  /** The two neighbours along one axis: masked weights and clamped integer positions. */
  const corners = (name: string, p: string, max: string): { w0: string; w1: string; i0: string; i1: string } => {
    const lo = op('coord', `${name}0`, 'Floor', [p], F);
    const hi = op('coord', `${name}1`, 'Add', [lo, one], F);
    // Weight of the lower neighbour is (hi - p), of the upper (p - lo): onnxruntime's form.
    const w0 = op('coord', `${name}0_weight`, 'Sub', [hi, p], F);
    const w1 = op('coord', `${name}1_weight`, 'Sub', [p, lo], F);
    const masked = (pos: string, w: string, k: number): string => {
      const ge = op('coord', `${name}${k}_ge0`, 'GreaterOrEqual', [pos, zero], DType.BOOL);
      const le = op('coord', `${name}${k}_lemax`, 'LessOrEqual', [pos, max], DType.BOOL);
      const inside = op('coord', `${name}${k}_inside`, 'And', [ge, le], DType.BOOL);
      return op('coord', `${name}${k}_weight_masked`, 'Where', [inside, w, zero], F);
    };
    const clamped = (pos: string, k: number): string => {
      const low = op('index', `${name}${k}_clamp_low`, 'Max', [pos, zero], F);
      const both = op('index', `${name}${k}_clamp`, 'Min', [low, max], F);
      return op('index', `${name}${k}_int`, 'Cast', [both], I32, [intAttr('to', I32)]);
    };
    return { w0: masked(lo, w0, 0), w1: masked(hi, w1, 1), i0: clamped(lo, 0), i1: clamped(hi, 1) };
  };
  const cx = corners('x', px, W.max);
  const cy = corners('y', py, H.max);

  // Corner order: (y0,x0), (y0,x1), (y1,x0), (y1,x1). Each index/weight is [N, Ho, Wo].
  const row0 = op('index', 'row0', 'Mul', [cy.i0, W.i32], I32);
  const row1 = op('index', 'row1', 'Mul', [cy.i1, W.i32], I32);
  const flatIndex = [
    op('index', 'corner00', 'Add', [row0, cx.i0], I32),
    op('index', 'corner01', 'Add', [row0, cx.i1], I32),
    op('index', 'corner10', 'Add', [row1, cx.i0], I32),
    op('index', 'corner11', 'Add', [row1, cx.i1], I32),
  ];
  const weights = [
    op('coord', 'weight00', 'Mul', [cy.w0, cx.w0], F),
    op('coord', 'weight01', 'Mul', [cy.w0, cx.w1], F),
    op('coord', 'weight10', 'Mul', [cy.w1, cx.w0], F),
    op('coord', 'weight11', 'Mul', [cy.w1, cx.w1], F),
  ];
  const axis1 = ed.i64('gs_axes_1', [1]);
  /** Four [N, Ho, Wo] tensors -> one [N, 4, Ho, Wo] -> reshaped with `shape`. */
  const stack4 = (role: string, name: string, parts: string[], type: number, shape: string): string => {
    const unsq = parts.map((p, k) => op(role, `${name}_unsqueeze${k}`, 'Unsqueeze', [p, axis1], type));
    const cat = op(role, `${name}_concat`, 'Concat', unsq, type, [intAttr('axis', 1)]);
    return op(role, `${name}_flat`, 'Reshape', [cat, shape], type);
  };
  const index = stack4('index', 'index', flatIndex, I32, ed.i64('gs_shape_n_1_rest', [0, 1, -1])); // [N, 1, 4*Ho*Wo]
  const weight = stack4('coord', 'weights', weights, F, ed.i64('gs_shape_n_1_4_rest', [0, 1, 4, -1])); // [N, 1, 4, Ho*Wo]

  // GatherElements needs the index repeated over channels: [N, 1, K] -> [N, C, K].
  const channelsI64 =
    cStatic !== undefined ? ed.i64(`gs_channels_${cStatic}`, [cStatic]) : op('gather', 'channels', 'Shape', [x], I64, [intAttr('start', 1), intAttr('end', 2)]);
  const oneI64 = ed.i64('gs_one_i64', [1]);
  const expandShape = cStatic !== undefined ? ed.i64(`gs_expand_1_${cStatic}_1`, [1, cStatic, 1]) : op('gather', 'expand_shape', 'Concat', [oneI64, channelsI64, oneI64], I64, [intAttr('axis', 0)]);
  const indexPerChannel = op('gather', 'index_per_channel', 'Expand', [index, expandShape], I32);
  const flatMap = op('gather', 'map_flat', 'Reshape', [x, ed.i64('gs_shape_n_c_rest', [0, 0, -1])], F); // [N, C, H*W]
  const gathered = op('gather', 'corners', 'GatherElements', [flatMap, indexPerChannel], F, [intAttr('axis', 2)]);
  const corners4 = op('gather', 'corners_4', 'Reshape', [gathered, ed.i64('gs_shape_n_c_4_rest', [0, 0, 4, -1])], F);

  const weighted = op('blend', 'weighted', 'Mul', [corners4, weight], F);
  const summed = op('blend', 'sum', 'ReduceSum', [weighted, ed.i64('gs_axes_2', [2])], F, [intAttr('keepdims', 0)]); // [N, C, Ho*Wo]
  const nc = op('blend', 'shape_nc', 'Shape', [x], I64, [intAttr('start', 0), intAttr('end', 2)]);
  const howo = op('blend', 'shape_howo', 'Shape', [grid], I64, [intAttr('start', 1), intAttr('end', 3)]);
  const outShape = op('blend', 'shape_out', 'Concat', [nc, howo], I64, [intAttr('axis', 0)]);
  // The last node writes the GridSample's own output name, so consumers need no rewiring.
  ed.nodes.push({ opType: 'Reshape', name: ed.uniqueName(`${base}/blend/output`), input: [summed, outShape], output: [out], attribute: [], domain: '' });
}
