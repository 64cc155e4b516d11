/**
 * Which backends exist on this machine and why the others do not. `auto` takes TensorRT when the
 * native addon loads and sees a GPU, else the CPU; the choice and its reason are reported.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { DeimError } from '../errors.js';
import type { Backend, BackendAvailability, BackendChoice, BackendName } from './types.js';
import { tensorrtAvailability } from './tensorrt/availability.js';

/** The installed onnxruntime-node's version, read without loading it (a run that picks TensorRT never does). */
function onnxruntimeVersion(): string {
  try {
    return (createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string }).version;
  } catch {
    return '?';
  }
}

export function cpuAvailability(): BackendAvailability {
  return {
    name: 'cpu',
    available: true,
    detail: `onnxruntime-node ${onnxruntimeVersion()} on ${os.cpus()[0]?.model?.trim() ?? 'CPU'} (${os.availableParallelism()} threads)`,
  };
}

export function backendAvailability(): BackendAvailability[] {
  return [tensorrtAvailability(), cpuAvailability()];
}

export interface BackendDecision {
  name: BackendName;
  /** Why this backend: "requested", or what auto saw. */
  reason: string;
}

export function chooseBackend(choice: BackendChoice = 'auto'): BackendDecision {
  if (choice !== 'auto' && choice !== 'cpu' && choice !== 'tensorrt') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `backend must be auto, cpu or tensorrt, got "${choice}"`, { input: String(choice) });
  }
  if (choice === 'cpu') return { name: 'cpu', reason: 'requested' };
  const trt = tensorrtAvailability();
  if (choice === 'tensorrt') {
    if (!trt.available) throw new DeimError('ERR_BACKEND_UNAVAILABLE', trt.detail.startsWith('TensorRT unavailable') ? trt.detail : `TensorRT unavailable: ${trt.detail}`);
    return { name: 'tensorrt', reason: 'requested' };
  }
  if (trt.available) return { name: 'tensorrt', reason: `auto: ${trt.detail}` };
  // The reason is long and the same on every run: `deimv2 info` and --backend tensorrt print it.
  return { name: 'cpu', reason: 'auto: TensorRT unavailable (deimv2 info says why)' };
}

export type { Backend };
