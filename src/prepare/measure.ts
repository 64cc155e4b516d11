/**
 * Measuring a prepared graph against the original with onnxruntime on the CPU: the same input
 * tensors through both, then box/score deltas and detection agreement.
 */
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { compareDetections, type ValidationFigures } from '../postprocess/compare.js';

/** Raw outputs of a DEIMv2 graph for one image. */
export interface ModelOutputs {
  labels: BigInt64Array;
  boxes: Float32Array;
  scores: Float32Array;
}

export interface ImageInput {
  file: string;
  width: number;
  height: number;
  /** [3, size, size] RGB in [0,1]. */
  chw: Float32Array;
}

/**
 * A fixed preprocessing (stretch to size x size, RGB, /255, CHW). Both graphs get the same
 * tensor, which is all the comparisons need.
 */
export async function loadImageInputs(files: string[], size: number): Promise<ImageInput[]> {
  return Promise.all(
    files.map(async (file) => {
      const meta = await sharp(file).metadata();
      const rgb = await sharp(file).removeAlpha().resize(size, size, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
      const plane = size * size;
      const chw = new Float32Array(3 * plane);
      for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) chw[c * plane + i] = rgb[i * 3 + c]! / 255;
      return { file, width: meta.width!, height: meta.height!, chw };
    }),
  );
}

export async function createSession(model: string | Uint8Array): Promise<ort.InferenceSession> {
  const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 1, interOpNumThreads: 1 };
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}

export async function runImage(session: ort.InferenceSession, img: ImageInput, size: number): Promise<ModelOutputs> {
  const out = await session.run({
    images: new ort.Tensor('float32', img.chw, [1, 3, size, size]),
    orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([BigInt(img.width), BigInt(img.height)]), [1, 2]),
  });
  return { labels: out.labels!.data as BigInt64Array, boxes: out.boxes!.data as Float32Array, scores: out.scores!.data as Float32Array };
}

export interface Comparison {
  maxBoxDelta: number;
  maxScoreDelta: number;
  /** inf/NaN values in the tested outputs. */
  nonFinite: number;
  /** Detections at the threshold in the reference. */
  refDetections: number;
  testDetections: number;
  /** Reference detections found again: same label, IoU >= 0.5. */
  matched: number;
  /** Largest box coordinate difference between matched detections (pixels). */
  maxMatchedBoxDelta: number;
  /** Same count, same labels in the same order: what "identical detections" means. */
  identical: boolean;
}

/** Compares one image's outputs (test against ref) at a score threshold. */
export function compareOutputs(ref: ModelOutputs, test: ModelOutputs, threshold: number): Comparison {
  let maxBoxDelta = 0;
  let maxScoreDelta = 0;
  let nonFinite = 0;
  for (let i = 0; i < ref.boxes.length; i++) {
    const v = test.boxes[i]!;
    if (!Number.isFinite(v)) nonFinite++;
    else maxBoxDelta = Math.max(maxBoxDelta, Math.abs(v - ref.boxes[i]!));
  }
  for (let i = 0; i < ref.scores.length; i++) {
    const v = test.scores[i]!;
    if (!Number.isFinite(v)) nonFinite++;
    else maxScoreDelta = Math.max(maxScoreDelta, Math.abs(v - ref.scores[i]!));
  }
  const kept = (o: ModelOutputs): number[] => [...o.scores.keys()].filter((i) => o.scores[i]! >= threshold);
  const r = kept(ref);
  const t = kept(test);
  const identical = r.length === t.length && r.every((i, k) => ref.labels[i] === test.labels[t[k]!]);
  const used = new Set<number>();
  let matched = 0;
  let maxMatchedBoxDelta = 0;
  for (const i of r) {
    const j = t.find((j) => !used.has(j) && test.labels[j] === ref.labels[i] && iou(ref.boxes, i, test.boxes, j) >= 0.5);
    if (j !== undefined) {
      used.add(j);
      matched++;
      for (let k = 0; k < 4; k++) maxMatchedBoxDelta = Math.max(maxMatchedBoxDelta, Math.abs(ref.boxes[4 * i + k]! - test.boxes[4 * j + k]!));
    }
  }
  return { maxBoxDelta, maxScoreDelta, nonFinite, refDetections: r.length, testDetections: t.length, matched, maxMatchedBoxDelta, identical };
}

function iou(a: Float32Array, i: number, b: Float32Array, j: number): number {
  const [ax1, ay1, ax2, ay2] = [a[4 * i]!, a[4 * i + 1]!, a[4 * i + 2]!, a[4 * i + 3]!];
  const [bx1, by1, bx2, by2] = [b[4 * j]!, b[4 * j + 1]!, b[4 * j + 2]!, b[4 * j + 3]!];
  const w = Math.max(0, Math.min(ax2, bx2) - Math.max(ax1, bx1));
  const h = Math.max(0, Math.min(ay2, by2) - Math.max(ay1, by1));
  const inter = w * h;
  const union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter;
  return union > 0 ? inter / union : 0;
}

/** Folds per-image comparisons into one summary. */
export function summarise(list: Comparison[]): Comparison & { images: number; identicalImages: number } {
  const s = { maxBoxDelta: 0, maxScoreDelta: 0, nonFinite: 0, refDetections: 0, testDetections: 0, matched: 0, maxMatchedBoxDelta: 0, identical: true, images: list.length, identicalImages: 0 };
  for (const c of list) {
    s.maxBoxDelta = Math.max(s.maxBoxDelta, c.maxBoxDelta);
    s.maxScoreDelta = Math.max(s.maxScoreDelta, c.maxScoreDelta);
    s.nonFinite += c.nonFinite;
    s.refDetections += c.refDetections;
    s.testDetections += c.testDetections;
    s.matched += c.matched;
    s.maxMatchedBoxDelta = Math.max(s.maxMatchedBoxDelta, c.maxMatchedBoxDelta);
    s.identical &&= c.identical;
    if (c.identical) s.identicalImages++;
  }
  return s;
}

/** Runs every image through both sessions and compares. */
export async function compareSessions(ref: ort.InferenceSession, test: ort.InferenceSession, images: ImageInput[], size: number, threshold: number): Promise<Comparison[]> {
  const out: Comparison[] = [];
  for (const img of images) out.push(compareOutputs(await runImage(ref, img, size), await runImage(test, img, size), threshold));
  return out;
}

/** One image's outputs as detections (class index, score, box), best first. */
export function outputDetections(o: ModelOutputs): Array<{ classId: number; score: number; box: [number, number, number, number] }> {
  return [...o.scores.keys()]
    .map((i) => ({ classId: Number(o.labels[i]), score: o.scores[i]!, box: [o.boxes[4 * i]!, o.boxes[4 * i + 1]!, o.boxes[4 * i + 2]!, o.boxes[4 * i + 3]!] as [number, number, number, number] }))
    .sort((a, b) => b.score - a.score);
}

/**
 * Runs every image through both sessions and judges the test graph by the rule post-build
 * validation applies to engines (src/postprocess/compare.ts), so the CPU FP16 check and the
 * engine check cannot drift apart.
 */
export async function validateSessions(ref: ort.InferenceSession, test: ort.InferenceSession, images: ImageInput[], size: number,
  options: { threshold: number; precision: 'fp16' | 'fp32' }): Promise<ValidationFigures> {
  const reference = [], candidate = [];
  for (const img of images) {
    reference.push(outputDetections(await runImage(ref, img, size)));
    candidate.push(outputDetections(await runImage(test, img, size)));
  }
  return compareDetections(reference, candidate, options);
}
