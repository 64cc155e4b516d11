/**
 * `prepareModel`: makes an engine-ready ONNX from a DEIMv2 export. GridSample becomes a gather
 * subgraph (TensorRT miscompiles GridSample in these decoders) and, optionally, the graph
 * becomes mixed-precision FP16 for strongly typed TensorRT, or an FP32 graph emulating that
 * FP16 plan for measuring on the CPU. The input file is only read.
 */
import path from 'node:path';
import { DeimError } from '../errors.js';
import { planOutputs } from '../output/plan.js';
import { resolveModel } from '../models/resolve.js';
import { DEIMV2_KEEP_FP32, applyPrecision, planPrecision, type KeepRule } from './fp16.js';
import { GraphEditor } from './graph.js';
import { rewriteGridSamples } from './grid-sample.js';
import { cloneModel, encodeModel, loadModel, saveModel, type ModelProto } from './onnx-io.js';

export { DEIMV2_KEEP_FP32, type KeepRule } from './fp16.js';

export interface PrepareOptions {
  /** Where to write the prepared model. Without it nothing is written (the bytes are returned). */
  out?: string;
  /** 'fp32' (default): same types as the input. 'fp16': mixed precision with float16 types. */
  precision?: 'fp32' | 'fp16';
  /** Write an FP32 graph that rounds every FP16-planned tensor through float16 (CPU measurement). Default false. */
  emulateFp16?: boolean;
  /** 'mixed' (default): keep-FP32 rules apply; 'all': every compute node FP16 (naive FP16, for comparison). */
  fp16Plan?: 'mixed' | 'all';
  /** Keep-FP32 rules for the mixed plan. Default DEIMV2_KEEP_FP32. */
  keepFp32?: readonly KeepRule[];
  /** Rewrite GridSample into gather ops. Default true. */
  rewriteGridSample?: boolean;
  /** Folder searched first when `input` is a variant name. */
  modelDir?: string;
}

export interface PrepareResult {
  inputPath: string;
  /** The written file, or undefined when `out` was not given. */
  outPath?: string;
  /** The prepared model, encoded. */
  bytes: Uint8Array;
  /** Number of GridSample nodes rewritten, and their names. */
  rewritten: number;
  rewrittenNodes: string[];
  /** Things the user should know (GridSample left alone, nothing to rewrite). */
  warnings: string[];
  precision: 'fp32' | 'fp16' | 'fp16-emulated';
  nodesBefore: number;
  nodesAfter: number;
  /** Keep-FP32 rule -> number of nodes it kept (fp16 and emulation only). */
  keptFp32: Record<string, number>;
  fp16Nodes: number;
  casts: number;
  ms: number;
}

/**
 * @example
 * const r = await prepareModel('femto', { out: 'femto.engine.onnx', precision: 'fp16' });
 * console.log(r.rewritten, r.warnings);
 */
export async function prepareModel(input: string, options: PrepareOptions = {}): Promise<PrepareResult> {
  const start = performance.now();
  const inputPath = resolveModel(input, options.modelDir ? { modelDir: options.modelDir } : {}).path;
  const precisionOpt = options.precision ?? 'fp32';
  if (precisionOpt !== 'fp32' && precisionOpt !== 'fp16') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected precision fp32 or fp16 but received ${String(precisionOpt)}`, { input: String(precisionOpt) });
  }
  if (options.fp16Plan !== undefined && options.fp16Plan !== 'mixed' && options.fp16Plan !== 'all') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected fp16Plan mixed or all but received ${String(options.fp16Plan)}`);
  }
  if (options.emulateFp16 && precisionOpt === 'fp16') {
    throw new DeimError('ERR_INVALID_ARGUMENT', 'emulateFp16 writes an FP32 graph: use it with precision fp32 (the default), not fp16');
  }
  // Never over the input model (links included); a target that cannot be written fails before the work.
  if (options.out !== undefined) planOutputs({ inputs: [inputPath], outputs: [{ path: options.out, kind: 'onnx', flag: '--out' }] });
  const model = loadModel(inputPath);
  const prepared = prepareLoaded(model, options);
  const bytes = encodeModel(prepared.model);
  let outPath: string | undefined;
  if (options.out !== undefined) {
    outPath = path.resolve(options.out);
    saveModel(prepared.model, outPath);
  }
  const { model: _m, ...rest } = prepared;
  return { inputPath, outPath, bytes, ...rest, ms: performance.now() - start };
}

/** The in-memory part of prepareModel, for callers that already hold a model (tests, the report). */
export function prepareLoaded(source: ModelProto, options: PrepareOptions = {}): Omit<PrepareResult, 'inputPath' | 'outPath' | 'bytes' | 'ms'> & { model: ModelProto } {
  const model = cloneModel(source);
  const ed = new GraphEditor(model);
  const nodesBefore = ed.nodes.length;
  const warnings: string[] = [];
  let rewrittenNodes: string[] = [];
  if (options.rewriteGridSample ?? true) {
    const gs = rewriteGridSamples(ed);
    rewrittenNodes = gs.rewritten;
    warnings.push(...gs.warnings);
    if (gs.rewritten.length === 0 && gs.warnings.length === 0) warnings.push('The model has no GridSample node: nothing to rewrite');
  }
  const keptFp32: Record<string, number> = {};
  let fp16Nodes = 0;
  let casts = 0;
  let precision: PrepareResult['precision'] = 'fp32';
  if (options.precision === 'fp16' || options.emulateFp16) {
    const rules = options.fp16Plan === 'all' ? [] : (options.keepFp32 ?? DEIMV2_KEEP_FP32);
    const plan = planPrecision(ed, rules);
    for (const [rule, nodes] of plan.keptBy) keptFp32[rule] = nodes.length;
    const applied = applyPrecision(ed, plan, options.emulateFp16 ? 'emulate' : 'fp16');
    fp16Nodes = applied.fp16Nodes;
    casts = applied.casts;
    precision = options.emulateFp16 ? 'fp16-emulated' : 'fp16';
  }
  ed.sortTopologically();
  ed.pruneInitializers();
  model.producerName = `${model.producerName ?? ''}+deimv2-prepare`;
  return { model, rewritten: rewrittenNodes.length, rewrittenNodes, warnings, precision, nodesBefore, nodesAfter: ed.nodes.length, keptFp32, fp16Nodes, casts };
}

