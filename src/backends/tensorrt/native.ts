/**
 * The one place that loads the native addon (build/Release or prebuilds/, through node-gyp-build),
 * and its types, mirrored field by field from binding/options.h and binding/engine.h.
 * Loading never throws: a failure is kept with its reason for `deimv2 info` and error messages.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** What the addon was built with (binding/build_info.cc). */
export interface NativeBuildInfo {
  readonly tensorrt: boolean;
  /** TensorRT version of the headers it was compiled against ('' without TensorRT). */
  readonly tensorrtHeaders: string;
  readonly cudaToolkit: string;
  /** The active runtime has the preprocessing kernel (the CUDA build's, or the simulator's host build of it). */
  readonly cudaKernels: boolean;
  /** The active runtime: 'simulated' after DEIMV2_GPU_RUNTIME=simulated. */
  readonly runtime: NativeRuntimeName;
  /** Why it was built without TensorRT ('' when with). */
  readonly reason: string;
  readonly napiVersion: number;
}

/** binding/options.h BuildOptions. */
export interface NativeBuildOptions {
  onnx: string;
  engine: string;
  precision: 'fp16' | 'fp32';
  /** Take precisions from the graph's types (TensorRT 11 always does). Default false. */
  stronglyTyped?: boolean;
  minBatch?: number;
  optBatch?: number;
  maxBatch?: number;
  /** Builder workspace limit in MiB; 0 = TensorRT's default. */
  workspaceMiB?: number;
  device?: number;
  timingCache?: string;
  /** Simulated runtime only: a recording of inputs and outputs (src/engine/record.ts) the engine replays. */
  recording?: string;
}

export interface NativeBuildProgress {
  readonly event: 'start' | 'step' | 'finish';
  readonly phase: string;
  readonly parent: string;
  readonly step: number;
  readonly steps: number;
}

export interface NativeBuildResult {
  readonly engine: string;
  readonly bytes: number;
  readonly buildMs: number;
  readonly tensorrtVersion: string;
  /** The runtime that built it. */
  readonly runtime: NativeRuntimeName;
  readonly warnings: readonly string[];
}

export interface NativeTensorInfo {
  readonly name: string;
  readonly input: boolean;
  readonly dtype: 'float32' | 'float16' | 'bfloat16' | 'int8' | 'uint8' | 'bool' | 'int32' | 'int64';
  /** -1 on the dynamic batch axis. */
  readonly shape: readonly number[];
}

/** binding/engine.h Engine. */
export interface NativeEngine {
  readonly tensors: readonly NativeTensorInfo[];
  readonly profile: { readonly min: number; readonly opt: number; readonly max: number };
  readonly slots: number;
  readonly closed: boolean;
  /** Pinned host memory of one slot, one ArrayBuffer per tensor, sized for profile.max. */
  buffers(slot: number): Readonly<Record<string, ArrayBuffer>>;
  /** Runs `batch` items of slot `slot`; the slot's buffers must not be touched until it settles. */
  infer(slot: number, batch: number): Promise<void>;
  /** The slot's pinned uint8 frame staging (openEngine with frameBytes > 0); throws ERR_UNSUPPORTED otherwise. */
  frames(slot: number): ArrayBuffer;
  /**
   * As infer(), but the image input is made on the GPU by the preprocessing kernel from the RGB
   * frames in frames(slot), as `plan`/`tables`/`lut` say (src/backends/tensorrt/frames.ts).
   */
  inferFrames(slot: number, batch: number, plan: Int32Array, tables: Int32Array, lut: Float32Array): Promise<void>;
  /** Copies the first `batch` images of the slot's device image input back into buffers(slot).images (checks of the kernel). */
  readInput(slot: number, batch: number): Promise<void>;
  /** Per slot: graphs asked for and working, the batch size of the captured graph (-1 none), why capture was given up. */
  readonly cudaGraphs: ReadonlyArray<{ readonly enabled: boolean; readonly batch: number; readonly failure: string }>;
  /** Whether slots have frame staging for the kernel; `reason` says why not when frameBytes > 0 was asked for (no kernel image for the GPU). */
  readonly gpuPreprocessing: { readonly enabled: boolean; readonly reason: string };
  isBusy(slot: number): boolean;
  /** Every call returns the same promise, settled once the GPU memory is freed. */
  close(): Promise<void>;
}

/** binding/options.h OpenOptions. */
export interface NativeOpenOptions {
  engine: string;
  device?: number;
  contexts?: number;
  /** Per slot, bytes of pinned uint8 frame staging for inferFrames(); 0 (default) = none. */
  frameBytes?: number;
  /** Replay enqueueV3 from a CUDA graph once a batch size repeats; default true. */
  cudaGraphs?: boolean;
}

export interface NativeCudaDevice {
  readonly index: number;
  readonly name: string;
  /** 'major.minor' */
  readonly computeCapability: string;
  readonly totalMemory: number;
  readonly multiprocessors: number;
}

/** The GPU runtime the addon's calls go to (binding/runtime/gpu_runtime.h). */
export type NativeRuntimeName = 'tensorrt' | 'simulated';

/** The simulated runtime's bookkeeping (binding/sim/sim_stats.h): what it holds now and contract violations seen. */
export interface NativeSimulatorStats {
  readonly deviceBytes: number;
  readonly deviceAllocations: number;
  readonly pinnedBytes: number;
  readonly pinnedAllocations: number;
  readonly streams: number;
  readonly events: number;
  readonly graphs: number;
  readonly contexts: number;
  readonly engines: number;
  readonly kernelLaunches: number;
  readonly graphLaunches: number;
  readonly enqueues: number;
  readonly violations: readonly string[];
}

export interface NativeAddon {
  buildInfo(): NativeBuildInfo;
  /** A progress callback returning false cancels the build (ERR_CANCELLED). */
  buildEngine(options: NativeBuildOptions, onProgress?: (event: NativeBuildProgress) => boolean | void): Promise<NativeBuildResult>;
  openEngine(options: NativeOpenOptions): Promise<NativeEngine>;
  /** inferFrames()' argument checks, in every build (the one without TensorRT too). */
  checkFramePlan(plan: Int32Array, tables: Int32Array, lut: Float32Array, batch: number, frameBytes: number, planeSide: number): { frameBytesUsed: number };
  cudaDevices(): { devices: NativeCudaDevice[]; error: string };
  tensorrtVersion(): string;
  /** Chooses the runtime of every later call in this process; returns the one in use. */
  useRuntime(name: NativeRuntimeName): NativeRuntimeName;
  runtime(): NativeRuntimeName;
  simulator(): NativeSimulatorStats;
}

export type AddonLoad = { readonly addon: NativeAddon; readonly error?: undefined } | { readonly addon?: undefined; readonly error: string };

/** The package root (dist/backends/tensorrt/native.js -> ../../..), where build/ and prebuilds/ live. */
export const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let cached: AddonLoad | undefined;

/**
 * Loads the addon once. `DEIMV2_NATIVE_ADDON` names a .node file to load instead (tests, custom builds);
 * `DEIMV2_GPU_RUNTIME=simulated` switches it to the simulated GPU runtime (CI; see binding/sim/).
 * @example const { addon, error } = loadAddon(); if (addon) console.log(addon.buildInfo());
 */
export function loadAddon(): AddonLoad {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  try {
    const override = process.env.DEIMV2_NATIVE_ADDON;
    const addon = (override ? require(override) : require('node-gyp-build')(PACKAGE_ROOT)) as NativeAddon;
    const runtime = process.env.DEIMV2_GPU_RUNTIME;
    if (runtime !== undefined && runtime !== '' && runtime !== 'tensorrt' && runtime !== 'simulated') {
      cached = { error: `DEIMV2_GPU_RUNTIME must be "tensorrt" or "simulated", got "${runtime}"` };
      return cached;
    }
    // The simulated runtime is never chosen silently: only this variable selects it.
    if (typeof addon.useRuntime === 'function') addon.useRuntime(runtime === 'simulated' ? 'simulated' : 'tensorrt');
    else if (runtime === 'simulated') {
      cached = { error: 'DEIMV2_GPU_RUNTIME=simulated but the loaded addon predates the simulated runtime; run npm run build:native' };
      return cached;
    }
    cached = { addon };
  } catch (e) {
    // node-gyp-build says "No native build was found for ..."; a dlopen failure names the missing library
    // (e.g. libnvinfer.so.10 when TensorRT is not on LD_LIBRARY_PATH).
    const message = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
    cached = { error: message };
  }
  return cached;
}

/** Forgets the loaded addon (tests switch DEIMV2_NATIVE_ADDON). */
export function resetAddonForTests(): void {
  cached = undefined;
}
