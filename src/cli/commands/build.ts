/**
 * `deimv2 build`: builds (or reuses) a validated TensorRT engine ahead of deployment.
 *
 *   deimv2 build --model femto --precision fp16 --max-batch 16 --out engines
 *   deimv2 detect --backend tensorrt --engine engines/<name>.engine photo.jpg
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { probeTensorRt } from '../../backends/tensorrt/availability.js';
import { PACKAGE_ROOT } from '../../backends/tensorrt/native.js';
import { buildEngine, type BuildEngineOptions } from '../../engine/build.js';
import { recordEngine } from '../../engine/record.js';
import { DeimError } from '../../errors.js';
import { resolveModel } from '../../models/resolve.js';
import { planOutputs, type OutputRequest } from '../../output/plan.js';
import { checkRepositoryTarget, defaultModelName, writeTritonPlan, type RepositoryTarget } from '../../triton/index.js';

interface BuildCliOptions {
  model: string;
  modelDir?: string;
  precision?: string;
  maxBatch: string;
  optBatch?: string;
  workspace?: string;
  out?: string;
  device: string;
  timingCache?: string;
  validateImages?: string;
  validate: boolean;
  prepare: boolean;
  force?: boolean;
  json?: boolean;
  quiet?: boolean;
  tritonRepo?: string;
  tritonName?: string;
  instances?: string;
  record?: string;
  resize?: string;
  saveRecording?: string;
}

function intOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a non-negative integer for ${flag} but received "${value}"`, { input: value });
  return Number(value);
}

/** The images of a folder the build reads (--record, --validate-images); unreadable ones are the build's to report. */
function folderImages(dir: string | undefined): string[] {
  if (dir === undefined) return [];
  try {
    return readdirSync(dir).filter((n) => /\.(jpe?g|png|webp)$/i.test(n)).map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

/**
 * The files a build writes besides the engine folder's own (the recorded engine, the recording,
 * the Triton repository), checked against what it reads and against each other before any work
 * (src/output/plan.ts), with their folders made. A non-recorded build plans its folder, engine,
 * sidecar, prepared graph and timing cache itself (engine/build.ts).
 */
async function planBuildOutputs(cli: BuildCliOptions, triton: RepositoryTarget | undefined): Promise<void> {
  const outputs: OutputRequest[] = [];
  if (cli.record !== undefined) {
    outputs.push({ path: cli.out!, kind: 'engine', flag: '--out' });
    if (cli.saveRecording !== undefined) outputs.push({ path: cli.saveRecording, kind: 'recording', flag: '--save-recording' });
  }
  if (triton) {
    const paths = await checkRepositoryTarget(triton);
    outputs.push({ path: paths.repo, kind: 'folder', flag: '--triton-repo' },
      ...[paths.model, paths.config, paths.readme].map((p) => ({ path: p, kind: 'triton', flag: '--triton-repo' })));
  }
  if (outputs.length === 0) return;
  let model: string | undefined;
  try {
    model = resolveModel(cli.model, cli.modelDir !== undefined ? { modelDir: cli.modelDir } : {}).path;
  } catch {
    model = undefined; // the build reports it
  }
  const inputs = [...(model ? [model] : []), path.join(PACKAGE_ROOT, 'examples', 'example.jpg'), ...folderImages(cli.record), ...folderImages(cli.validateImages)];
  planOutputs({ inputs, outputs });
}

export function register(program: Command): void {
  program
    .command('build')
    .description('build a TensorRT engine for a model (validated against the CPU backend), or reuse a valid cached one')
    .option('-m, --model <name|file>', 'variant name (atto, femto, ...) or .onnx file', 'atto')
    .option('--model-dir <dir>', 'folder with the variant ONNX files')
    .option('--precision <fp16|fp32>', 'engine precision (default: fp16 on GPUs with fast FP16, else fp32)')
    .option('--max-batch <n>', 'largest batch the engine takes', '1')
    .option('--opt-batch <n>', 'batch size TensorRT tunes for (default: --max-batch)')
    .option('--workspace <MiB>', 'builder workspace limit in MiB (default: TensorRT decides)')
    .option('-o, --out <dir>', 'folder for the engine, its JSON sidecar and the timing cache (default: the engine cache)')
    .option('--device <n>', 'CUDA device index', '0')
    .option('--timing-cache <file>', 'timing cache file, reused across builds')
    .option('--validate-images <dir>', 'also validate on the images of this folder')
    .option('--no-validate', 'skip validation against the CPU backend')
    .option('--no-prepare', 'build from the original ONNX instead of the engine-ready graph of `deimv2 prepare`')
    .option('--force', 'rebuild even when a valid engine exists')
    .option('--record <dir>', 'simulated GPU runtime only (DEIMV2_GPU_RUNTIME=simulated): record the images of <dir> on the CPU backend into the engine file --out')
    .option('--resize <stretch|letterbox>', 'with --record: how the detector that uses the engine resizes', 'stretch')
    .option('--save-recording <file>', 'with --record: also keep the recording (DEIMV2_SIM_RECORDING=<file> replays it in every simulated build)')
    .option('--json', 'print the result as JSON')
    .option('-q, --quiet', 'no progress lines')
    .option('--triton-repo <dir>', 'also write a Triton model repository: DIR/NAME/1/model.plan + config.pbtxt')
    .option('--triton-name <name>', 'Triton model name (default: deimv2_<variant> or the file name)')
    .option('--instances <n>', 'Triton model instances per GPU', '1')
    .action(async (cli: BuildCliOptions) => {
      if (cli.precision !== undefined && cli.precision !== 'fp16' && cli.precision !== 'fp32') {
        throw new DeimError('ERR_INVALID_ARGUMENT', `Expected fp16 or fp32 for --precision but received "${cli.precision}"`, { input: cli.precision });
      }
      const log = cli.quiet || cli.json ? undefined : (line: string) => process.stderr.write(`${line}\n`);
      if (cli.record !== undefined && cli.out === undefined) throw new DeimError('ERR_INVALID_ARGUMENT', '--record needs --out <engine file>');
      // Triton target and every output checked before the (long) build; written from the engine's own IO after it.
      if (cli.tritonName !== undefined && cli.tritonRepo === undefined) throw new DeimError('ERR_INVALID_ARGUMENT', '--triton-name needs --triton-repo <dir>');
      const triton = cli.tritonRepo === undefined ? undefined
        : { repo: cli.tritonRepo, name: cli.tritonName ?? defaultModelName(cli.model), model: cli.model, instances: intOption(cli.instances, '--instances') };
      await planBuildOutputs(cli, triton);
      if (cli.record !== undefined) {
        if (cli.resize !== 'stretch' && cli.resize !== 'letterbox') throw new DeimError('ERR_INVALID_ARGUMENT', `Expected stretch or letterbox for --resize but received "${cli.resize}"`, { input: String(cli.resize) });
        const recorded = await recordEngine({
          model: cli.model, inputs: cli.record, out: cli.out!, resize: cli.resize, maxBatch: intOption(cli.maxBatch, '--max-batch')!, device: intOption(cli.device, '--device')!,
          ...(cli.modelDir !== undefined ? { modelDir: cli.modelDir } : {}),
          ...(cli.saveRecording !== undefined ? { recordingOut: cli.saveRecording } : {}),
          ...(log ? { onProgress: (e: { event: string; phase: string }) => { if (e.event !== 'step') log(`  ${e.event} ${e.phase}`); } } : {}),
        });
        // A recorded engine has no sidecar: the build facts come from the runtime that just built it.
        const probe = probeTensorRt();
        const device = intOption(cli.device, '--device')!;
        const gpu = probe.ok ? probe.devices[device] : undefined;
        const repo = triton && await writeTritonPlan({
          ...triton, engine: recorded.engine, gpus: [device],
          build: { tensorrtVersion: probe.ok ? probe.version : 'simulated', precision: 'fp32', device, sourceModel: resolveModel(cli.model, cli.modelDir !== undefined ? { modelDir: cli.modelDir } : {}).path,
            ...(gpu ? { gpuName: gpu.name, computeCapability: gpu.computeCapability } : {}) },
        });
        process.stdout.write(cli.json ? JSON.stringify({ ...recorded, ...(repo ? { triton: { model: repo.model, config: repo.config } } : {}) }, null, 2) + '\n'
          : `recorded ${recorded.recorded} image(s) into ${recorded.engine} (${recorded.bytes} bytes, simulated runtime)\n` +
            (repo ? `triton: ${repo.model}\n${repo.warnings.map((w) => `warning: ${w}\n`).join('')}` : ''));
        process.exitCode = 0;
        return;
      }
      const options: BuildEngineOptions = {
        model: cli.model,
        device: intOption(cli.device, '--device')!,
        maxBatch: intOption(cli.maxBatch, '--max-batch')!,
        validate: cli.validate,
        prepare: cli.prepare,
        ...(cli.modelDir !== undefined ? { modelDir: cli.modelDir } : {}),
        ...(cli.precision !== undefined ? { precision: cli.precision as 'fp16' | 'fp32' } : {}),
        ...(cli.optBatch !== undefined ? { optBatch: intOption(cli.optBatch, '--opt-batch')! } : {}),
        ...(cli.workspace !== undefined ? { workspaceMiB: intOption(cli.workspace, '--workspace')! } : {}),
        ...(cli.out !== undefined ? { out: cli.out } : {}),
        ...(cli.timingCache !== undefined ? { timingCache: cli.timingCache } : {}),
        ...(cli.validateImages !== undefined ? { validateImages: cli.validateImages } : {}),
        ...(cli.force ? { force: true } : {}),
        ...(log ? {
          onLog: log,
          // Builder phases as plain lines: they work the same on a TTY and in CI logs.
          onProgress: (e) => { if (e.event !== 'step' && e.parent === '') log(`  ${e.event} ${e.phase}${e.steps ? ` (${e.steps} steps)` : ''}`); },
        } : {}),
      };
      const result = await buildEngine(options);
      const repo = triton && await writeTritonPlan({ ...triton, engine: result.engine, build: result.sidecar });
      if (cli.json) {
        process.stdout.write(JSON.stringify({ engine: result.engine, reused: result.reused, ...result.sidecar, ...(repo ? { triton: { model: repo.model, config: repo.config } } : {}) }, null, 2) + '\n');
      } else {
        const v = result.sidecar.validation;
        process.stdout.write(`${result.reused ? 'reused' : 'built'} ${result.engine} (TensorRT ${result.sidecar.tensorrtVersion}, ${result.sidecar.precision}, ` +
          `batch ${result.sidecar.profile.min}..${result.sidecar.profile.max}, ${result.sidecar.gpuName})` +
          `${v ? `\nvalidation: ${v.passed ? 'passed' : 'FAILED'}: ${v.message}` : '\nvalidation: skipped'}\n`);
        if (repo) process.stdout.write(`triton: ${repo.model}\n${repo.warnings.map((w) => `warning: ${w}\n`).join('')}`);
      }
      process.exitCode = 0;
    });
}
