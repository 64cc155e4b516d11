/**
 * The mixed-FP16 plan (src/prepare/fp16.ts) on the real Atto and Femto exports and on small graphs
 * that have what the exports lack: query selection stays FP32, nodes whose output type is an
 * attribute keep a type that matches it, missing value_info is inferred by op (never guessed), and
 * the CPU FP16 graph is judged by the same rule as post-build engine validation.
 */
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { compareDetections, VALIDATION_TOLERANCE } from '../dist/engine/validate.js';
import { GraphEditor } from '../dist/prepare/graph.js';
import { prepareLoaded, prepareModel } from '../dist/prepare/index.js';
import { createSession, loadImageInputs, validateSessions } from '../dist/prepare/measure.js';
import { AttributeType, DType, encodeModel, loadModel, type ModelProto, type NodeProto } from '../dist/prepare/onnx-io.js';
import { compareDetections as sharedRule } from '../dist/postprocess/compare.js';
import { COCO_IMAGES as COCO_DIR, MODEL_DIR } from './helpers/paths.js';
import { readdirSync } from 'node:fs';

const MODELS = [
  { name: 'atto', file: path.join(MODEL_DIR, 'deimv2_hgnetv2_atto_coco.onnx'), size: 320 },
  { name: 'femto', file: path.join(MODEL_DIR, 'deimv2_hgnetv2_femto_coco.onnx'), size: 416 },
];
const cocoFiles = (n: number) => readdirSync(COCO_DIR).filter((f) => f.endsWith('.jpg')).sort().slice(0, n).map((f) => path.join(COCO_DIR, f));

/** The element type of each node's float inputs/outputs in a prepared model. */
function typesOf(model: ModelProto): GraphEditor {
  return new GraphEditor(model);
}

describe.each(MODELS)('mixed FP16 on $name', ({ file, size }) => {
  it('keeps ReduceMax and TopK (query selection) in FP32 and every graph type consistent', async () => {
    const r = prepareLoaded(loadModel(file), { precision: 'fp16' });
    expect(r.keptFp32['query-selection']).toBe(4);
    const ed = typesOf(r.model);
    const selection = r.model.graph!.node!.filter((n) => n.opType === 'TopK' || n.opType === 'ReduceMax');
    expect(selection.map((n) => n.name)).toEqual(expect.arrayContaining(['/model/decoder/ReduceMax', '/model/decoder/TopK']));
    for (const n of selection) expect([n.name, ed.typeOf(n.input![0]!)]).toEqual([n.name, DType.FLOAT]);
    // onnxruntime type-checks every node on load: a float16/float32 mismatch anywhere fails here.
    const session = await createSession(encodeModel(r.model));
    await session.release();
  });

  it('passes the engine validation rule against the original graph on COCO images', async () => {
    const r = await prepareModel(file, { precision: 'fp16' });
    const [ref, half] = [await createSession(file), await createSession(r.bytes)];
    try {
      const figures = await validateSessions(ref, half, await loadImageInputs(cocoFiles(6), size), size, { threshold: 0.4, precision: 'fp16' });
      expect(figures.referenceBoxes).toBeGreaterThan(5);
      expect(figures.missed, figures.message).toBe(0);
      expect(figures.passed, figures.message).toBe(true);
    } finally {
      await Promise.all([ref.release(), half.release()]);
    }
  });
});

describe('one agreement rule', () => {
  it('validation and the CPU FP16 check share compareDetections and its tolerances', () => {
    expect(compareDetections).toBe(sharedRule);
    expect(VALIDATION_TOLERANCE.fp16.maxScoreDelta).toBeGreaterThan(VALIDATION_TOLERANCE.fp32.maxScoreDelta);
    const ref = [[{ classId: 0, score: 0.9, box: [0, 0, 10, 10] as [number, number, number, number] }]];
    // A confident box missing fails either check; one near the threshold may cross it.
    expect(compareDetections(ref, [[]], { threshold: 0.4, precision: 'fp16' }).passed).toBe(false);
    const near = [[{ classId: 0, score: 0.42, box: [0, 0, 10, 10] as [number, number, number, number] }]];
    expect(compareDetections(near, [[]], { threshold: 0.4, precision: 'fp16' }).passed).toBe(true);
  });
});

/** X [2,4] -> Mul(Constant) -> Add(ConstantOfShape) -> Add(EyeLike) -> Y, intermediates without value_info. */
function attributeTypedGraph(extra?: NodeProto): ModelProto {
  const f32 = (name: string, dims: number[]) => ({ name, type: { tensorType: { elemType: DType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
  const tensor = (dataType: number, dims: number[], raw: ArrayBufferView) => ({ dataType, dims, rawData: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength) });
  const nodes: NodeProto[] = [
    { opType: 'Constant', name: 'c', output: ['c'], attribute: [{ name: 'value', type: AttributeType.TENSOR, t: tensor(DType.FLOAT, [4], new Float32Array([1, 2, 3, 4])) }] },
    { opType: 'Mul', name: 'mul', input: ['x', 'c'], output: ['m'] },
    { opType: 'ConstantOfShape', name: 'z', input: ['shape'], output: ['z'], attribute: [{ name: 'value', type: AttributeType.TENSOR, t: tensor(DType.FLOAT, [1], new Float32Array([0.5])) }] },
    { opType: 'Add', name: 'add', input: ['m', 'z'], output: ['a'] },
    { opType: 'EyeLike', name: 'eye', input: ['a'], output: ['e'] },
    { opType: 'Add', name: 'out', input: ['a', 'e'], output: [extra ? 'y0' : 'y'] },
  ];
  if (extra) nodes.push(extra);
  return ({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'attribute-typed',
      node: nodes,
      input: [f32('x', [2, 4])],
      output: [f32('y', [2, 4])],
      initializer: [{ name: 'shape', ...tensor(DType.INT64, [2], new BigInt64Array([2n, 4n])) }],
    },
  });
}

describe('nodes typed by attributes, and missing value_info', () => {
  it('Constant, ConstantOfShape and EyeLike keep float32 outputs; the FP16 graph loads and computes the same', async () => {
    const model = attributeTypedGraph();
    const r = prepareLoaded(model, { precision: 'fp16' });
    const ed = typesOf(r.model);
    for (const t of ['c', 'z', 'e']) expect([t, ed.typeOf(t)]).toEqual([t, DType.FLOAT]);
    expect(ed.typeOf('m')).toBe(DType.FLOAT16); // the Mul itself did go FP16
    const x = new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]);
    const run = async (m: ModelProto) => {
      const s = await ort.InferenceSession.create(encodeModel(m));
      try {
        return (await s.run({ x: new ort.Tensor('float32', x, [2, 4]) })).y!.data as Float32Array;
      } finally {
        await s.release();
      }
    };
    const [want, got] = [await run(attributeTypedGraph()), await run(r.model)];
    expect([...got]).toEqual([...want]); // small integers and halves are exact in float16
  });

  it('infers types by op, and refuses an output whose type it cannot know instead of guessing', () => {
    const ed = typesOf(attributeTypedGraph());
    expect([ed.typeOf('c'), ed.typeOf('z'), ed.typeOf('m'), ed.typeOf('e')]).toEqual([DType.FLOAT, DType.FLOAT, DType.FLOAT, DType.FLOAT]);
    const unknown = attributeTypedGraph({ opType: 'Mystery', domain: 'com.example', name: 'mystery', input: ['y0'], output: ['y'] });
    unknown.graph!.output = [];
    unknown.graph!.output.push({ name: 'y2', type: { tensorType: { elemType: DType.FLOAT } } });
    unknown.graph!.node!.push({ opType: 'Relu', name: 'after', input: ['y'], output: ['y2'] });
    expect(typesOf(unknown).typeOf('y')).toBeUndefined();
    expect(() => prepareLoaded(unknown, { precision: 'fp16' })).toThrow(/element type of "y" \(output of Mystery node "mystery"\)/);
  });
});
