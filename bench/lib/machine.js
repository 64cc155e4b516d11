/** What the benchmark ran on: CPU, cores, GPU, TensorRT, onnxruntime, Node, ffmpeg. */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';

function gpuNames() {
  try {
    const out = execFileSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * @param {{ tensorrt: { available: boolean, detail: string }, ffmpeg: object }} probes
 */
export function machineInfo(probes) {
  const require = createRequire(import.meta.url);
  let onnxruntime = 'unknown';
  try {
    onnxruntime = require('onnxruntime-node/package.json').version;
  } catch {
    // left unknown
  }
  return {
    host: os.hostname(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: os.cpus()[0]?.model?.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    gpu: gpuNames(),
    tensorrt: probes.tensorrt.detail,
    onnxruntime,
    node: process.version,
    ffmpeg: 'error' in probes.ffmpeg ? `unavailable: ${probes.ffmpeg.error}` : `${probes.ffmpeg.version} (${probes.ffmpeg.source})`,
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
