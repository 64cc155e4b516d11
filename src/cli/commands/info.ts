/** `deimv2 info`: variants and where their files are, backends and why not, CPU, defaults. */
import os from 'node:os';
import type { Command } from 'commander';
import { backendAvailability } from '../../backends/registry.js';
import { findVariantFiles, modelSearchDirs } from '../../models/resolve.js';
import { VARIANTS, VARIANT_NAMES } from '../../models/variants.js';
import { ffmpegInfo } from '../../video/ffmpeg.js';

export function register(program: Command): void {
  program
    .command('info')
    .description('show variants, model files found, backends available (and why not), CPU and defaults')
    .option('--model-dir <dir>', 'folder searched first for variant files')
    .option('--json', 'machine-readable output')
    .action((options: { modelDir?: string; json?: boolean }) => {
      const info = collectInfo(options.modelDir);
      if (options.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
      else process.stdout.write(formatInfo(info));
    });
}

export function collectInfo(modelDir?: string) {
  const found = findVariantFiles(modelDir !== undefined ? { modelDir } : {});
  const cores = os.availableParallelism();
  return {
    node: process.version,
    cpu: { model: os.cpus()[0]?.model?.trim() ?? 'unknown', cores },
    modelSearchDirs: modelSearchDirs(modelDir !== undefined ? { modelDir } : {}),
    variants: VARIANT_NAMES.map((name) => {
      const v = VARIANTS[name];
      const hit = found.get(name);
      return { name, backbone: v.backbone, inputSize: v.inputSize, queries: v.queries, normalization: v.normalization, paperAP: v.paperAP, file: hit?.path ?? null, source: hit?.source ?? null };
    }),
    backends: backendAvailability(),
    ffmpeg: ffmpegInfo(),
    cpuLayout: {
      default: 'pool',
      pool: `${cores} single-thread onnxruntime sessions in worker threads (folders, batches, video)`,
      single: `one onnxruntime session with ${cores} threads (lowest latency of one call)`,
      why: 'these models are small and onnxruntime\'s intra-op threads barely help them, so one single-thread session per core gives the most images per second; `node bench/detect-throughput.js` measures both layouts on this machine',
    },
  };
}

function formatInfo(info: ReturnType<typeof collectInfo>): string {
  const lines: string[] = [];
  lines.push(`deimv2 on Node ${info.node}, ${info.cpu.model} (${info.cpu.cores} cores)`, '');
  lines.push('Variants:');
  lines.push('  name   backbone  input  queries  normalisation  AP(paper)  model file');
  for (const v of info.variants) {
    lines.push(
      `  ${v.name.padEnd(6)} ${v.backbone.padEnd(9)} ${String(v.inputSize).padStart(5)}  ${String(v.queries).padStart(7)}  ${v.normalization.padEnd(13)}  ${v.paperAP.toFixed(1).padStart(9)}  ${v.file ? `${v.file} (${v.source})` : 'not found'}`,
    );
  }
  lines.push(`  searched: ${info.modelSearchDirs.map((d) => d.dir).join(', ')}`, '');
  lines.push('Backends:');
  for (const b of info.backends) lines.push(`  ${b.name.padEnd(9)} ${b.available ? 'available  ' : 'unavailable'}  ${b.detail}`);
  const ff = info.ffmpeg;
  lines.push('', `ffmpeg (video): ${'error' in ff ? `unavailable: ${ff.error}` : `${ff.path} (${ff.source}, ${ff.version})`}`);
  lines.push('', `CPU layout: ${info.cpuLayout.default} (default)`, `  pool:   ${info.cpuLayout.pool}`, `  single: ${info.cpuLayout.single}`, `  ${info.cpuLayout.why}`, '');
  return lines.join('\n');
}
