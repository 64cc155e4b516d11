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
import { compareDetections, type ValidationFigures } from '../postprocess/compare.js';
import type { Detection } from '../postprocess/types.js';

/** The one rule an engine (and the CPU FP16 graph) must meet: src/postprocess/compare.ts. */
export { compareDetections, iou, THRESHOLD_MARGIN, VALIDATION_TOLERANCE } from '../postprocess/compare.js';

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
