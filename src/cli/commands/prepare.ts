/**
 * `deimv2 prepare`: an engine-ready ONNX (GridSample rewritten, optional mixed FP16), an FP16
 * emulation graph for the CPU, or a per-layer FP16 sensitivity report.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { DeimError } from '../../errors.js';
import { resolveModel } from '../../models/resolve.js';
import { prepareModel, type PrepareResult } from '../../prepare/index.js';
import { loadModel } from '../../prepare/onnx-io.js';
import { checkRepositoryTarget, defaultModelName, writeTritonOnnx } from '../../triton/index.js';
import { loadImageInputs } from '../../prepare/measure.js';
import { formatReport, sensitivityReport } from '../../prepare/report.js';
import { decimal } from '../options.js';

interface PrepareCliOptions {
  model: string;
  modelDir?: string;
  out?: string;
  precision: string;
  emulateFp16?: boolean;
  allFp16?: boolean;
  gridsampleRewrite: boolean;
  report?: boolean;
  images?: string;
  reportImages: string;
  json?: boolean;
  tritonRepo?: string;
  tritonName?: string;
  instances?: string;
}

export function register(program: Command): void {
  program
    .command('prepare')
    .description('make an engine-ready ONNX: GridSample rewritten into gather ops, optional mixed-precision FP16 for strongly typed TensorRT')
    .option('-m, --model <name|path>', 'variant name (atto, femto, ...) or .onnx path', 'atto')
    .option('--model-dir <dir>', 'folder searched first for variant files')
    .option('-o, --out <file>', 'where to write the prepared ONNX (never the input file)')
    .option('--precision <fp32|fp16>', 'fp16: mixed precision, FP16 except the keep-FP32 set', 'fp32')
    .option('--emulate-fp16', 'write an FP32 graph that rounds every FP16-planned tensor through float16 (to measure FP16 on the CPU)')
    .option('--all-fp16', 'plan every compute node in FP16 (naive FP16, to compare with the mixed plan)')
    .option('--no-gridsample-rewrite', 'leave GridSample nodes as they are')
    .option('--report', 'measure per-layer FP16 sensitivity with onnxruntime on --images (takes minutes)')
    .option('--images <dir>', 'folder of images for --report')
    .option('--report-images <n>', 'how many images --report uses', '8')
    .option('--json', 'machine-readable output')
    .option('--triton-repo <dir>', 'also write a Triton model repository of the prepared graph: DIR/NAME/1/model.onnx + config.pbtxt (KIND_CPU)')
    .option('--triton-name <name>', 'Triton model name (default: deimv2_<variant> or the file name)')
    .option('--instances <n>', 'Triton model instances', '1')
    .addHelpText('after', '\nExamples:\n  deimv2 prepare --model femto --out femto.engine.onnx --precision fp16\n  deimv2 prepare --model atto --out atto.emu.onnx --emulate-fp16\n  deimv2 prepare --model atto --report --images ../shared/coco/val2017')
    .action(async (options: PrepareCliOptions) => {
      if (!options.report && !options.out && !options.tritonRepo) throw new DeimError('ERR_INVALID_ARGUMENT', 'deimv2 prepare needs --out <file> (or --triton-repo <dir>, or --report)');
      if (options.precision !== 'fp32' && options.precision !== 'fp16') {
        throw new DeimError('ERR_INVALID_ARGUMENT', `Expected fp32 or fp16 for --precision but received ${options.precision}`, { input: '--precision' });
      }
      if (!/^\d+$/.test(options.instances ?? '1')) throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a positive integer for --instances but received "${options.instances}"`, { input: '--instances' });
      if (options.tritonName !== undefined && options.tritonRepo === undefined) throw new DeimError('ERR_INVALID_ARGUMENT', '--triton-name needs --triton-repo <dir>');
      const triton = options.tritonRepo === undefined ? undefined
        : { repo: options.tritonRepo, name: options.tritonName ?? defaultModelName(options.model), model: options.model, instances: decimal(options.instances ?? '1') };
      if (triton) await checkRepositoryTarget(triton, 'model.onnx');
      if (options.out || triton) {
        const result = await prepareModel(options.model, {
          ...(options.out ? { out: options.out } : {}),
          precision: options.precision,
          emulateFp16: options.emulateFp16 ?? false,
          fp16Plan: options.allFp16 ? 'all' : 'mixed',
          rewriteGridSample: options.gridsampleRewrite,
          ...(options.modelDir ? { modelDir: options.modelDir } : {}),
        });
        const repo = triton && await writeTritonOnnx({ ...triton, onnx: result.bytes, model: result.inputPath, inputs: [result.inputPath] });
        if (options.json) {
          const { bytes, ...rest } = result;
          process.stdout.write(JSON.stringify({ ...rest, sizeBytes: bytes.length, ...(repo ? { triton: { model: repo.model, config: repo.config } } : {}) }, null, 2) + '\n');
        } else process.stdout.write(formatResult(result));
        if (repo && !options.json) process.stdout.write(`triton: ${repo.model}\n${repo.warnings.map((w) => `warning: ${w}\n`).join('')}`);
      }
      if (options.report) await runReport(options);
      process.exitCode = 0;
    });
}

function formatResult(r: PrepareResult): string {
  const lines = [`${r.inputPath} -> ${r.outPath ?? '(in memory)'} (${(r.bytes.length / 1e6).toFixed(2)} MB, ${r.ms.toFixed(0)} ms)`];
  lines.push(`  GridSample rewritten: ${r.rewritten}`);
  lines.push(`  nodes: ${r.nodesBefore} -> ${r.nodesAfter}`);
  if (r.precision !== 'fp32') {
    const kept = Object.entries(r.keptFp32).map(([k, v]) => `${k} ${v}`).join(', ');
    lines.push(`  precision: ${r.precision}; FP16 nodes ${r.fp16Nodes}, casts ${r.casts}; kept FP32: ${kept || 'none (all-FP16 plan)'}`);
  }
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join('\n') + '\n';
}

async function runReport(options: PrepareCliOptions): Promise<void> {
  if (!options.images) throw new DeimError('ERR_INVALID_ARGUMENT', '--report needs --images <dir> (for example ../shared/coco/val2017)');
  const count = decimal(options.reportImages);
  if (!Number.isInteger(count) || count < 1) throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a positive integer for --report-images but received ${options.reportImages}`);
  let files: string[];
  try {
    files = readdirSync(options.images).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort().slice(0, count).map((f) => path.join(options.images!, f));
  } catch (e) {
    throw new DeimError('ERR_INPUT_NOT_FOUND', `Cannot read the image folder ${options.images}`, { input: options.images, cause: e });
  }
  if (files.length === 0) throw new DeimError('ERR_NO_IMAGES', `No images in ${options.images}`, { input: options.images });
  const modelPath = resolveModel(options.model, options.modelDir ? { modelDir: options.modelDir } : {}).path;
  const model = loadModel(modelPath);
  const dims = model.graph!.input![0]!.type?.tensorType?.shape?.dim ?? [];
  const size = Number(dims[3]?.dimValue ?? 0);
  if (!(size > 0)) throw new DeimError('ERR_MODEL_NOT_DEIMV2', `${modelPath}: the image input has no static size`, { input: modelPath });
  const images = await loadImageInputs(files, size);
  const report = await sensitivityReport(model, images, size, { onProgress: (l) => process.stderr.write(`  ${l}\n`) });
  process.stdout.write(options.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report) + '\n');
}
