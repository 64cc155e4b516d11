/**
 * Per-layer FP16 sensitivity, measured with onnxruntime on the CPU:
 *  1. range scan: every tensor a compute node writes, from the FP32 graph, checked against
 *     the float16 range (|x| > 65504 overflows to inf; non-zero |x| < 6e-8 flushes to 0);
 *  2. per group (a module path such as /model/decoder/decoder/layers.0/norm1): FP16 emulated
 *     on that group alone, output deviation against FP32;
 *  3. per keep-FP32 rule: the mixed plan without that rule, to show what each rule buys.
 */
import ort from 'onnxruntime-node';
import { DEIMV2_KEEP_FP32, applyPrecision, isFollowOp, planPrecision, type KeepRule } from './fp16.js';
import { GraphEditor } from './graph.js';
import { rewriteGridSamples } from './grid-sample.js';
import { DType, cloneModel, encodeModel, type ModelProto, type NodeProto } from './onnx-io.js';
import { compareSessions, createSession, summarise, type ImageInput } from './measure.js';

const FP16_MAX = 65504;

export interface RangeEntry {
  node: string;
  opType: string;
  tensor: string;
  maxAbs: number;
  /** Values that become inf in float16. */
  overflow: number;
  /** inf/NaN already in FP32. */
  nonFinite: number;
}

export interface Deviation {
  /** Group, rule or plan measured. */
  name: string;
  nodes: number;
  maxScoreDelta: number;
  /** Reference detections (score >= threshold) found again, of all. */
  matched: number;
  refDetections: number;
  nonFinite: number;
}

export interface SensitivityReport {
  images: number;
  threshold: number;
  /** Tensors that overflow float16 or hold inf/NaN, largest first; then the largest in range. */
  ranges: RangeEntry[];
  /** Groups ranked by the deviation that FP16 on that group alone causes. */
  groups: Deviation[];
  /** The mixed plan, the mixed plan without each rule, and all-FP16. */
  plans: Deviation[];
}

export interface ReportOptions {
  threshold?: number;
  keepFp32?: readonly KeepRule[];
  /** Progress lines (group names as they are measured). */
  onProgress?: (line: string) => void;
  /** Limit to the N groups with the largest range first (default: all). */
  maxGroups?: number;
  /** Module path segments that make a group (default 5; smaller is coarser and faster). */
  groupDepth?: number;
}

/** The module path a node belongs to; the rewritten GridSample's nodes count as the GridSample. */
export function groupOf(node: NodeProto, depth = 5): string {
  const n = node.name ?? '';
  const gs = /^(.*\/GridSample(?:_\d+)?)\//.exec(n);
  if (gs) return gs[1]!;
  const cut = n.lastIndexOf('/');
  const module = cut > 0 ? n.slice(0, cut) : n || (node.opType ?? '?');
  // '/model/backbone/stages.0/blocks/blocks.0/layers.1/lab' -> first `depth` segments: fewer, larger groups.
  return module.split('/').slice(0, depth).join('/');
}

export async function sensitivityReport(source: ModelProto, images: ImageInput[], size: number, options: ReportOptions = {}): Promise<SensitivityReport> {
  const threshold = options.threshold ?? 0.4;
  const keep = options.keepFp32 ?? DEIMV2_KEEP_FP32;
  const progress = options.onProgress ?? (() => {});
  const base = cloneModel(source);
  const baseEd = new GraphEditor(base);
  rewriteGridSamples(baseEd);
  baseEd.sortTopologically();
  const ref = await createSession(encodeModel(base));

  // 1. Range scan over every float tensor a compute node writes.
  const allPlan = planPrecision(new GraphEditor(cloneModel(base)), []);
  const scanModel = cloneModel(base);
  const scanEd = new GraphEditor(scanModel);
  const computeNodes = new Map<string, NodeProto>();
  for (const [n, p] of allPlan.precision) if (p === 'fp16' && !isFollowOp(n.opType ?? '')) computeNodes.set(n.name ?? '', n);
  const watched: Array<{ node: NodeProto; tensor: string }> = [];
  const outputs = new Set((scanModel.graph!.output ?? []).map((o) => o.name));
  for (const n of scanEd.nodes) {
    if (!computeNodes.has(n.name ?? '')) continue;
    for (const t of n.output ?? []) {
      if (!t || scanEd.typeOf(t) !== DType.FLOAT || outputs.has(t)) continue;
      watched.push({ node: n, tensor: t });
      scanModel.graph!.output!.push({ name: t, type: { tensorType: { elemType: DType.FLOAT } } });
    }
  }
  progress(`range scan: ${watched.length} tensors`);
  const scan = await createSession(encodeModel(scanModel));
  const stats = new Map<string, RangeEntry>(watched.map((w) => [w.tensor, { node: w.node.name ?? '', opType: w.node.opType ?? '', tensor: w.tensor, maxAbs: 0, overflow: 0, nonFinite: 0 }]));
  for (const img of images) {
    const out = await scan.run({
      images: new ort.Tensor('float32', img.chw, [1, 3, size, size]),
      orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([BigInt(img.width), BigInt(img.height)]), [1, 2]),
    });
    for (const w of watched) {
      const s = stats.get(w.tensor)!;
      const data = out[w.tensor]!.data as Float32Array;
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (!Number.isFinite(v)) s.nonFinite++;
        else {
          const a = Math.abs(v);
          if (a > s.maxAbs) s.maxAbs = a;
          if (a > FP16_MAX) s.overflow++;
        }
      }
    }
  }
  await scan.release();
  const ranges = [...stats.values()].sort((a, b) => b.overflow + b.nonFinite - (a.overflow + a.nonFinite) || b.maxAbs - a.maxAbs);

  // 2. FP16 on one group at a time.
  const groupNodes = new Map<string, Set<string>>();
  for (const n of computeNodes.values()) {
    const g = groupOf(n, options.groupDepth);
    let set = groupNodes.get(g);
    if (!set) groupNodes.set(g, (set = new Set()));
    set.add(n.name ?? '');
  }
  let groupList = [...groupNodes.keys()];
  if (options.maxGroups !== undefined) {
    const groupMax = (g: string): number => Math.max(...ranges.filter((r) => groupNodes.get(g)!.has(r.node)).map((r) => r.maxAbs), 0);
    groupList = groupList.sort((a, b) => groupMax(b) - groupMax(a)).slice(0, options.maxGroups);
  }
  const measure = async (name: string, rules: readonly KeepRule[], only?: Set<string>): Promise<Deviation> => {
    const m = cloneModel(base);
    const ed = new GraphEditor(m);
    const plan = planPrecision(ed, rules, only);
    applyPrecision(ed, plan, 'emulate');
    ed.sortTopologically();
    const session = await createSession(encodeModel(m));
    const s = summarise(await compareSessions(ref, session, images, size, threshold));
    await session.release();
    const nodes = [...plan.precision.values()].filter((p) => p === 'fp16').length;
    return { name, nodes, maxScoreDelta: s.maxScoreDelta, matched: s.matched, refDetections: s.refDetections, nonFinite: s.nonFinite };
  };
  const groups: Deviation[] = [];
  for (const g of groupList) {
    progress(`group ${g}`);
    groups.push(await measure(g, [], groupNodes.get(g)));
  }
  groups.sort((a, b) => b.nonFinite - a.nonFinite || a.matched / Math.max(1, a.refDetections) - b.matched / Math.max(1, b.refDetections) || b.maxScoreDelta - a.maxScoreDelta);

  // 3. What each keep rule buys.
  const plans: Deviation[] = [];
  progress('plans');
  plans.push(await measure('mixed (all keep rules)', keep));
  for (const rule of keep) plans.push(await measure(`mixed without ${rule.name}`, keep.filter((r) => r !== rule)));
  plans.push(await measure('all-FP16 (no keep rules)', []));
  await ref.release();
  return { images: images.length, threshold, ranges, groups, plans };
}

/** The report as text: plans, the groups ranked, the tensors out of float16 range. */
export function formatReport(r: SensitivityReport, top = 20): string {
  const dev = (d: Deviation): string =>
    `${d.name.padEnd(58)} fp16 nodes ${String(d.nodes).padStart(4)}  matched ${d.matched}/${d.refDetections}  max |Δscore| ${d.maxScoreDelta.toFixed(5)}${d.nonFinite ? `  inf/NaN ${d.nonFinite}` : ''}`;
  const lines = [`FP16 sensitivity on ${r.images} images (detections at score >= ${r.threshold}; deviation against the FP32 graph)`, '', 'Plans:'];
  lines.push(...r.plans.map(dev), '', `Groups with FP16 alone, most sensitive first (top ${top} of ${r.groups.length}):`);
  lines.push(...r.groups.slice(0, top).map(dev), '', 'Tensors outside the float16 range, then the largest magnitudes:');
  for (const e of r.ranges.slice(0, top)) {
    lines.push(`${e.node} (${e.opType})  max |x| ${e.maxAbs.toExponential(3)}${e.overflow ? `  overflow ${e.overflow}` : ''}${e.nonFinite ? `  inf/NaN ${e.nonFinite}` : ''}`);
  }
  return lines.join('\n');
}
