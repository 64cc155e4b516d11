/**
 * Engine validation: the engine must find what the CPU backend finds. Known TensorRT problems with
 * DEIMv2 (GridSample wrong on some 10.14+/11.x releases, FP16 accuracy loss in the decoder) show up
 * as missed or extra boxes, or large score deltas, on real images.
 */
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openCpuSingleRunner } from '../backends/cpu/single-runner.js';
import type { Runner, RunnerSetup } from '../backends/runner.js';
import { PACKAGE_ROOT } from '../backends/tensorrt/native.js';
import { openEngineRunner } from '../backends/tensorrt/runner.js';
import { DeimError } from '../errors.js';
import { COCO_CLASSES } from '../models/classes.js';
import { modelSpec } from '../models/model-spec.js';
import type { ResolvedModel } from '../models/resolve.js';
import { defaultMemoryBudget, MemoryBudget } from '../pool/budget.js';
import type { PostOptions } from '../pool/messages.js';
import { DEFAULT_MAX_DETECTIONS } from '../postprocess/detections.js';
import type { Detection } from '../postprocess/types.js';
import type { ValidationFigures } from './cache.js';

/** Tolerances per precision: FP16 legitimately moves scores and boxes a little. */
export const VALIDATION_TOLERANCE = {
  fp32: { maxScoreDelta: 0.02, minIoU: 0.95 },
  fp16: { maxScoreDelta: 0.1, minIoU: 0.85 },
} as const;
/** Boxes this close to the threshold may cross it either way without counting as missed or extra. */
export const THRESHOLD_MARGIN = 0.05;
const MATCH_IOU = 0.5;

export function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  const h = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union > 0 ? inter / union : 0;
}

type Det = Pick<Detection, 'classId' | 'score' | 'box'>;

/**
 * Compares detections image by image: each reference box is matched greedily (highest score first) to
 * the unmatched candidate of the same class with the highest IoU >= 0.5.
 * @example compareDetections([cpuDets], [trtDets], { threshold: 0.4, precision: 'fp16' }).passed
 */
export function compareDetections(
  reference: readonly (readonly Det[])[],
  candidate: readonly (readonly Det[])[],
  options: { threshold: number; precision: 'fp16' | 'fp32' },
): ValidationFigures {
  const tol = VALIDATION_TOLERANCE[options.precision];
  const sure = options.threshold + THRESHOLD_MARGIN;
  let referenceBoxes = 0, matched = 0, missed = 0, extra = 0, maxScoreDelta = 0, sumDelta = 0, minIoU = 1;
  for (let i = 0; i < reference.length; i++) {
    const refs = [...reference[i]!].filter((d) => d.score >= options.threshold).sort((a, b) => b.score - a.score);
    const cands = (candidate[i] ?? []).filter((d) => d.score >= options.threshold);
    const used = new Set<number>();
    referenceBoxes += refs.length;
    for (const r of refs) {
      let best = -1, bestIoU = MATCH_IOU;
      cands.forEach((c, j) => {
        if (used.has(j) || c.classId !== r.classId) return;
        const v = iou(r.box, c.box);
        if (v >= bestIoU) { best = j; bestIoU = v; }
      });
      if (best < 0) {
        if (r.score >= sure) missed++;
        continue;
      }
      used.add(best);
      matched++;
      const delta = Math.abs(cands[best]!.score - r.score);
      maxScoreDelta = Math.max(maxScoreDelta, delta);
      sumDelta += delta;
      minIoU = Math.min(minIoU, bestIoU);
    }
    cands.forEach((c, j) => { if (!used.has(j) && c.score >= sure) extra++; });
  }
  const problems: string[] = [];
  if (missed > 0) problems.push(`${missed} CPU detection(s) missing`);
  if (extra > 0) problems.push(`${extra} detection(s) the CPU does not make`);
  if (maxScoreDelta > tol.maxScoreDelta) problems.push(`score delta ${maxScoreDelta.toFixed(3)} > ${tol.maxScoreDelta}`);
  if (matched > 0 && minIoU < tol.minIoU) problems.push(`box IoU ${minIoU.toFixed(3)} < ${tol.minIoU}`);
  const passed = problems.length === 0;
  return {
    passed, images: reference.length, referenceBoxes, matched, missed, extra,
    maxScoreDelta, meanScoreDelta: matched ? sumDelta / matched : 0, minIoU: matched ? minIoU : 1,
    threshold: options.threshold,
    message: passed
      ? `${matched}/${referenceBoxes} CPU detections matched on ${reference.length} image(s), max score delta ${maxScoreDelta.toFixed(4)}`
      : problems.join('; '),
  };
}

/** The package's example image plus the images (jpg, jpeg, png, webp) of `dir`. */
export async function validationImages(dir?: string): Promise<string[]> {
  const images = [path.join(PACKAGE_ROOT, 'examples', 'example.jpg')];
  if (dir === undefined) return images;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new DeimError('ERR_INPUT_NOT_FOUND', `cannot read the validation image folder ${dir}: ${(e as Error).message}`, { input: dir, cause: e });
  }
  const found = names.filter((n) => /\.(jpe?g|png|webp)$/i.test(n)).sort().map((n) => path.join(dir, n));
  if (found.length === 0) throw new DeimError('ERR_NO_IMAGES', `no images (jpg, png, webp) in the validation folder ${dir}`, { input: dir });
  return images.concat(found);
}

/** Runs the engine's runner and the CPU single-session runner on `images` and compares them (needs a GPU). */
export async function validateEngine(options: {
  engine: string; model: ResolvedModel; device: number; precision: 'fp16' | 'fp32'; images: readonly string[]; threshold?: number;
}): Promise<ValidationFigures> {
  const threshold = options.threshold ?? 0.4;
  const setup: RunnerSetup = {
    model: options.model, specOf: (io) => modelSpec(options.model, io), resize: 'stretch', classes: COCO_CLASSES,
    threads: os.availableParallelism(), batch: 1, budget: MemoryBudget.create(defaultMemoryBudget()), device: options.device,
  };
  const post: PostOptions = { threshold, maxDetections: DEFAULT_MAX_DETECTIONS };
  const cpu = await openCpuSingleRunner(setup);
  try {
    const gpu = await openEngineRunner(options.engine, setup, `engine ${options.engine} under validation`);
    try {
      const reference: Detection[][] = [];
      const candidate: Detection[][] = [];
      const detectionsOf = async (runner: Runner, image: string): Promise<Detection[]> => {
        const [r] = (await runner.run([{ kind: 'path', path: image }], post)).results;
        if (!r || 'error' in r) throw new DeimError('ERR_INPUT_UNREADABLE', `validation image ${image}: ${r ? r.error.message : 'no result'}`, { input: image });
        return r.detections;
      };
      for (const image of options.images) {
        reference.push(await detectionsOf(cpu, image));
        candidate.push(await detectionsOf(gpu, image));
      }
      return compareDetections(reference, candidate, { threshold, precision: options.precision });
    } finally {
      await gpu.close();
    }
  } finally {
    await cpu.close();
  }
}
