/**
 * Is TensorRT usable here, and if not, why: feeds `deimv2 info`, `--backend tensorrt` errors and the
 * `auto` choice. Every unavailable reason starts with "TensorRT unavailable:".
 */
import type { BackendAvailability } from '../types.js';
import { loadAddon, type NativeAddon, type NativeCudaDevice } from './native.js';

export type TensorRtProbe =
  | { readonly ok: true; readonly addon: NativeAddon; readonly devices: readonly NativeCudaDevice[]; readonly version: string; readonly simulated: boolean }
  | { readonly ok: false; readonly reason: string };

let probed: TensorRtProbe | undefined;

/** Loads the addon and lists CUDA devices once; the result is cached for the process. */
export function probeTensorRt(): TensorRtProbe {
  if (probed) return probed;
  probed = probe();
  return probed;
}

function probe(): TensorRtProbe {
  const load = loadAddon();
  if (!load.addon) {
    // No prebuilt for this platform and no local build: the install found no TensorRT to build against.
    const missing = /No native build was found/i.test(load.error);
    return {
      ok: false,
      reason: missing
        ? 'TensorRT unavailable: no native addon (npm install builds it where cmake and a C++17 compiler exist); run npm run build:native'
        : `TensorRT unavailable: the native addon could not be loaded (${load.error}); run npm run build:native`,
    };
  }
  const addon = load.addon;
  const info = addon.buildInfo();
  const simulated = addon.runtime() === 'simulated';
  if (!info.tensorrt && !simulated) {
    return {
      ok: false,
      reason: `TensorRT unavailable: addon built without TensorRT (${info.reason}); set TENSORRT_ROOT, run npm run build:native`,
    };
  }
  let listed: { devices: NativeCudaDevice[]; error: string };
  let version: string;
  try {
    listed = addon.cudaDevices();
    version = addon.tensorrtVersion();
  } catch (e) {
    return { ok: false, reason: `TensorRT unavailable: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (listed.devices.length === 0) {
    return { ok: false, reason: `TensorRT unavailable: no CUDA device${listed.error ? ` (${listed.error})` : ''}` };
  }
  return { ok: true, addon, devices: listed.devices, version, simulated };
}

/** "tensorrt", or "tensorrt (simulated)" when DEIMV2_GPU_RUNTIME=simulated runs the simulated GPU runtime. */
export function tensorrtBackendLabel(): string {
  const p = probeTensorRt();
  return p.ok && p.simulated ? SIMULATED_LABEL : 'tensorrt';
}

export const SIMULATED_LABEL = 'tensorrt (simulated)';

/**
 * @example tensorrtAvailability() // { name: 'tensorrt', available: false, detail: 'TensorRT unavailable: no CUDA device (...)' }
 */
export function tensorrtAvailability(): BackendAvailability {
  const p = probeTensorRt();
  if (!p.ok) return { name: 'tensorrt', available: false, detail: p.reason };
  const gpus = p.devices.map((d) => `${d.index}: ${d.name} (sm ${d.computeCapability})`).join(', ');
  if (p.simulated) return { name: 'tensorrt', available: true, detail: `${SIMULATED_LABEL}: the simulated GPU runtime (DEIMV2_GPU_RUNTIME=simulated), not a GPU, on ${gpus}` };
  return { name: 'tensorrt', available: true, detail: `TensorRT ${p.version} on ${gpus}` };
}

/**
 * Whether a GPU runs FP16 at least as fast as FP32: the default precision policy. Volta (7.0) and
 * newer, plus P100 (6.0), Jetson TX2 (6.2) and TX1 (5.3); Pascal consumer cards (6.1) are 1/64 rate.
 */
export function hasFastFp16(computeCapability: string): boolean {
  const [major = 0, minor = 0] = computeCapability.split('.').map(Number);
  if (major >= 7) return true;
  return (major === 6 && (minor === 0 || minor === 2)) || (major === 5 && minor === 3);
}
