/**
 * The TensorRT form of a Triton model: the engine copied as `1/model.plan`, platform
 * `tensorrt_plan`, IO and batch profile from the engine itself (the addon's `tensors`/`profile`),
 * KIND_GPU instances and CUDA graphs; README.txt names the TensorRT the plan needs.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DeimError, errorMessage } from '../errors.js';
import { loadAddon } from '../backends/tensorrt/native.js';
import { tritonConfig, type TritonTensor } from './config.js';
import { defaultModelName, variantOf } from './names.js';
import { writeRepository, type RepositoryResult } from './repository.js';
import { SUPPORT_MATRIX_URL, TRITON_COMPATIBILITY_URL, tensorrtRelease, tritonReleasesFor } from './tensorrt-releases.js';

/** What an engine's sidecar JSON records about its build (the fields used here). */
export interface PlanBuildInfo {
  readonly tensorrtVersion: string;
  readonly precision?: string;
  readonly gpuName?: string;
  readonly computeCapability?: string;
  readonly device?: number;
  readonly engineSha256?: string;
  readonly sourceModel?: string;
}

/** The engine's IO as the addon reports it. */
export interface EngineIo {
  readonly tensors: readonly TritonTensor[];
  readonly profile: { readonly min: number; readonly opt: number; readonly max: number };
}

export interface TritonPlanOptions {
  /** Repository folder. */
  repo: string;
  /** The TensorRT engine file. */
  engine: string;
  /** Model name; default from `model`, else the build's source model, else the engine's file name. */
  name?: string;
  /** The --model value the engine was built from (variant name or .onnx path). */
  model?: string;
  /** Build facts; default: the engine's sidecar JSON (`<engine>.json`). */
  build?: PlanBuildInfo;
  /** Engine IO; default: read by opening the engine with the addon (needs its GPU and TensorRT). */
  io?: EngineIo;
  /** Instances per GPU. Default 1. */
  instances?: number;
  /** GPUs to place instances on. Default [the build's device, or 0]. */
  gpus?: number[];
  /** Default: the profile's max. */
  maxBatchSize?: number;
  /** Default: the profile's opt and max. */
  preferredBatchSizes?: number[];
  maxQueueDelayUs?: number;
  /** optimization { cuda { graphs } }. Default true. */
  cudaGraphs?: boolean;
}

/**
 * @example
 * const { engine, sidecar } = await buildEngine({ model: 'femto', maxBatch: 16 });
 * await writeTritonPlan({ repo: 'models', engine, build: sidecar, model: 'femto' });
 */
export async function writeTritonPlan(options: TritonPlanOptions): Promise<RepositoryResult> {
  const build = options.build ?? (await readSidecarInfo(options.engine));
  const io = options.io ?? (await readEngineIo(options.engine, build?.device ?? 0));
  const tensorrtVersion = build?.tensorrtVersion ?? loadAddon().addon?.tensorrtVersion();
  if (!tensorrtVersion) throw new DeimError('ERR_ENGINE_INVALID', `no sidecar JSON beside ${options.engine} says which TensorRT built it`, { input: options.engine });
  const { profile } = io;
  if (!(Number.isInteger(profile.min) && profile.min >= 1 && profile.opt >= profile.min && profile.max >= profile.opt)) {
    throw new DeimError('ERR_ENGINE_INVALID', `${options.engine}: unusable batch profile ${JSON.stringify(profile)}`, { input: options.engine });
  }
  const maxBatchSize = options.maxBatchSize ?? profile.max;
  if (maxBatchSize > profile.max) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `max batch size ${maxBatchSize} exceeds the engine's profile maximum ${profile.max}: rebuild with --max-batch ${maxBatchSize}`, { input: String(maxBatchSize) });
  }
  // The user's --model, else whichever of source model and engine file names a variant.
  const candidates = [build?.sourceModel, options.engine].filter((c): c is string => typeof c === 'string');
  const modelRef = options.model ?? candidates.find((c) => variantOf(c) !== undefined) ?? candidates[0]!;
  const name = options.name ?? defaultModelName(modelRef);
  const config = tritonConfig(io.tensors, {
    name,
    platform: 'tensorrt_plan',
    maxBatchSize,
    preferredBatchSizes: options.preferredBatchSizes ?? [profile.opt, maxBatchSize].filter((b) => b <= maxBatchSize),
    ...(options.maxQueueDelayUs !== undefined ? { maxQueueDelayUs: options.maxQueueDelayUs } : {}),
    kind: 'gpu',
    instances: options.instances ?? 1,
    gpus: options.gpus ?? [build?.device ?? 0],
    cudaGraphs: options.cudaGraphs ?? true,
  }, options.engine);
  const info: PlanBuildInfo = { ...build, tensorrtVersion };
  const written = await writeRepository({
    repo: options.repo,
    name,
    config,
    readme: planReadme(name, modelRef, info, io, options.engine),
    fileName: 'model.plan',
    source: { file: options.engine, ...(build?.engineSha256 ? { sha256: build.engineSha256 } : {}) },
    inputs: [options.engine, ...(build?.sourceModel ? [build.sourceModel] : [])],
  });
  return isSimulated(tensorrtVersion) ? { ...written, warnings: [...written.warnings, SIMULATED_NOTE] } : written;
}

/** The simulated GPU runtime (DEIMV2_GPU_RUNTIME=simulated) reports "simulated" where TensorRT reports its version. */
const isSimulated = (tensorrtVersion: string) => !/^\d/.test(tensorrtVersion);
const SIMULATED_NOTE = 'the plan is an engine of the simulated GPU runtime (DEIMV2_GPU_RUNTIME=simulated), for tests: no Triton loads it; build on a machine with TensorRT to serve';

/** The fields of `<engine>.json` used here, or undefined when there is no sidecar. */
async function readSidecarInfo(engine: string): Promise<PlanBuildInfo | undefined> {
  const file = engine.replace(/\.engine$/i, '') + '.json';
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  let data: Partial<PlanBuildInfo>;
  try {
    data = JSON.parse(text) as Partial<PlanBuildInfo>;
  } catch (e) {
    throw new DeimError('ERR_ENGINE_INVALID', `engine sidecar ${file} is not valid JSON: ${errorMessage(e)}`, { input: file, cause: e });
  }
  if (typeof data.tensorrtVersion !== 'string') throw new DeimError('ERR_ENGINE_INVALID', `engine sidecar ${file} records no tensorrtVersion`, { input: file });
  return data as PlanBuildInfo;
}

/** Opens the engine once to read its IO and batch profile, then closes it. */
async function readEngineIo(engine: string, device: number): Promise<EngineIo> {
  const { addon, error } = loadAddon();
  if (!addon) throw new DeimError('ERR_BACKEND_UNAVAILABLE', `reading the IO of ${engine} needs the TensorRT addon: ${error}`, { input: engine });
  let opened;
  try {
    opened = await addon.openEngine({ engine, device, contexts: 1, cudaGraphs: false });
  } catch (e) {
    throw new DeimError('ERR_ENGINE_INVALID', `cannot open ${engine} to read its IO: ${errorMessage(e)}`, { input: engine, cause: e });
  }
  try {
    return {
      tensors: opened.tensors.map((t) => ({ name: t.name, input: t.input, dtype: t.dtype, shape: [...t.shape] })),
      profile: { ...opened.profile },
    };
  } finally {
    await opened.close();
  }
}

const shape = (t: TritonTensor) => `${t.dtype} [${t.shape.map((d) => (d === -1 ? 'N' : d)).join(',')}]`;

function planReadme(name: string, model: string, build: PlanBuildInfo, io: EngineIo, engine: string): string {
  const variant = variantOf(model);
  const releases = tritonReleasesFor(build.tensorrtVersion);
  const trt = tensorrtRelease(build.tensorrtVersion);
  const gpu = build.gpuName ? `${build.gpuName}${build.computeCapability ? ` (compute capability ${build.computeCapability})` : ''}` : 'an unrecorded GPU';
  const lines = [
    `${name}: DEIMv2${variant ? ` ${variant.name}` : ''} object detector as a TensorRT plan for NVIDIA Triton Inference Server`,
    '',
    `Built with TensorRT ${build.tensorrtVersion}${build.precision ? `, ${build.precision}` : ''}, batch ${io.profile.min}..${io.profile.max} (opt ${io.profile.opt}), on ${gpu},`,
    `from ${build.sourceModel ?? (model !== engine ? model : 'an unrecorded ONNX model')} by deimv2 (engine ${path.basename(engine)}).`,
    '',
    ...(isSimulated(build.tensorrtVersion) ? [`NOT SERVABLE: ${SIMULATED_NOTE}.`, ''] : []),
    `TensorRT version: ${trt}. The plan loads only in a Triton whose TensorRT is ${trt} (the version that built`,
    `it), and it is specific to the GPU it was built on, ${gpu}: rebuild it for another GPU model.`,
    releases.length > 0
      ? `Triton's compatibility table lists TensorRT ${trt} in the trtllm-python-py3 containers of releases ${releases.join(', ')}.`
      : `Triton's compatibility table (${TRITON_COMPATIBILITY_URL}) lists no release with TensorRT ${trt}.`,
    `For the plain -py3 containers check NVIDIA's Frameworks Support Matrix: ${SUPPORT_MATRIX_URL}`,
    '(inside a container: ls /usr/lib/*-linux-gnu/libnvinfer.so.*).',
    `Or rebuild the plan with the serving machine's TensorRT: deimv2 build --model ${variant?.name ?? build.sourceModel ?? '<model.onnx>'} --triton-repo DIR`,
    '',
    'Inputs (N = batch, at most max_batch_size in config.pbtxt):',
    ...io.tensors.filter((t) => t.input).map((t) => `  ${t.name}: ${shape(t)}`),
    `  images: RGB, values in [0,1]${variant?.normalization === 'imagenet' ? ', then ImageNet mean/std normalised' : ''}, the whole image resized to the square side;`,
    '  orig_target_sizes: (width, height) of the original image.',
    'Outputs:',
    ...io.tensors.filter((t) => !t.input).map((t) => `  ${t.name}: ${shape(t)}`),
    '  labels: class index (0..79 for the COCO exports), boxes: x1,y1,x2,y2 in original-image pixels, scores: 0..1.',
    '',
    'Serve: tritonserver --model-repository=<the folder holding this one>',
    '',
  ];
  return lines.join('\n');
}
