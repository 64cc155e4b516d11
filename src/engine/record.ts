/**
 * Recorded engines for the simulated GPU runtime (binding/sim/): runs images through the CPU backend
 * and stores, for each, the exact input tensors the TensorRT path must produce (the image tensor
 * bytes and orig_target_sizes) and the model's outputs. The simulated engine built from the recording
 * replays those outputs for exactly those inputs and fails on any other input, so every difference in
 * preprocessing, sizes or batching on the TensorRT path shows up in CI as an error, and a match as
 * detections equal to the CPU backend's.
 *
 *   DEIMV2_GPU_RUNTIME=simulated deimv2 build --model atto --record photos/ --out atto.sim.engine
 *
 * @example
 * const { engine } = await recordEngine({ model: 'atto', inputs: ['a.jpg', 'b.jpg'], out: '/tmp/atto.engine' });
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { probeTensorRt } from '../backends/tensorrt/availability.js';
import { PACKAGE_ROOT, type NativeBuildProgress } from '../backends/tensorrt/native.js';
import { CpuSession } from '../backends/cpu/session.js';
import { DeimError } from '../errors.js';
import { decodeInput, type ImageInput } from '../image/decode.js';
import { imageToTensor, tensorSize } from '../image/tensor.js';
import type { ResizeMode } from '../image/types.js';
import { modelSpec } from '../models/model-spec.js';
import { resolveModel } from '../models/resolve.js';
import { writeFileAtomic } from '../output/atomic.js';

export interface RecordEngineOptions {
  /** Variant name or .onnx path. */
  model: string;
  modelDir?: string;
  /** A folder of images (jpg, jpeg, png, webp), or the inputs themselves (files, encoded bytes, raw frames). */
  inputs: string | readonly ImageInput[];
  /** The engine file to write. */
  out: string;
  /** How the Detector that will use the engine resizes; default 'stretch'. */
  resize?: ResizeMode;
  /** Largest batch the engine takes; default 1. */
  maxBatch?: number;
  device?: number;
  /** Also record the package's example image (the image engine validation runs); default true. */
  includeValidationImage?: boolean;
  onProgress?: (event: NativeBuildProgress) => void;
  /** Also keep the recording here: DEIMV2_SIM_RECORDING=<file> makes every simulated build (the engine cache's too) replay it. */
  recordingOut?: string;
}

export interface RecordEngineResult {
  readonly engine: string;
  /** Inputs recorded. */
  readonly recorded: number;
  readonly bytes: number;
}

/** The dtype codes of binding/runtime/gpu_runtime.h rt::DType. */
const DTYPE = { float32: 0, int64: 7 } as const;

interface TensorDesc { name: string; input: boolean; dtype: keyof typeof DTYPE; shape: number[] }

/** The images of a folder, sorted by name, as `deimv2 detect DIR` lists them. */
async function folderImages(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    throw new DeimError('ERR_INPUT_NOT_FOUND', `cannot read the recording folder ${dir}: ${(e as Error).message}`, { input: dir, cause: e });
  }
  const found = names.filter((n) => /\.(jpe?g|png|webp)$/i.test(n)).sort().map((n) => path.join(dir, n));
  if (found.length === 0) throw new DeimError('ERR_NO_IMAGES', `no images (jpg, png, webp) in the recording folder ${dir}`, { input: dir });
  return found;
}

function encodeRecording(tensors: readonly TensorDesc[], records: readonly Uint8Array[][]): Buffer {
  const parts: Buffer[] = [Buffer.from('DEIMV2RECORDING1', 'latin1')];
  const u32 = (v: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(v); parts.push(b); };
  const i32 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32LE(v); parts.push(b); };
  const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); parts.push(b); };
  const i64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); parts.push(b); };
  u32(tensors.length);
  for (const t of tensors) {
    const name = Buffer.from(t.name, 'utf8');
    u32(name.length);
    parts.push(name);
    parts.push(Buffer.from([t.input ? 1 : 0, DTYPE[t.dtype]]));
    i32(t.shape.length);
    t.shape.forEach(i64);
  }
  u32(records.length);
  for (const record of records) {
    for (const item of record) {
      u64(item.byteLength);
      parts.push(Buffer.from(item.buffer, item.byteOffset, item.byteLength));
    }
  }
  return Buffer.concat(parts);
}

const bytesOf = (a: Float32Array | BigInt64Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

/**
 * Records `inputs` on the CPU backend and builds a simulated engine that replays them. Needs
 * DEIMV2_GPU_RUNTIME=simulated (it refuses to write a recording into a real TensorRT build).
 */
export async function recordEngine(options: RecordEngineOptions): Promise<RecordEngineResult> {
  const probe = probeTensorRt();
  if (!probe.ok) throw new DeimError('ERR_BACKEND_UNAVAILABLE', probe.reason);
  if (!probe.simulated) {
    throw new DeimError('ERR_INVALID_ARGUMENT', 'recorded engines are for the simulated GPU runtime: set DEIMV2_GPU_RUNTIME=simulated (--record)');
  }
  const resize = options.resize ?? 'stretch';
  if (resize !== 'stretch' && resize !== 'letterbox') {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected stretch or letterbox for resize but received ${String(resize)}`, { input: String(resize) });
  }
  const maxBatch = options.maxBatch ?? 1;
  if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 4096) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected an integer between 1 and 4096 for maxBatch but received ${String(maxBatch)}`);
  }
  const resolved = resolveModel(options.model, options.modelDir !== undefined ? { modelDir: options.modelDir } : {});
  const inputs: ImageInput[] = typeof options.inputs === 'string' ? await folderImages(options.inputs) : [...options.inputs];
  if (options.includeValidationImage !== false) inputs.push(path.join(PACKAGE_ROOT, 'examples', 'example.jpg'));

  // One thread: the CPU detector's pool workers run one intra-op thread each.
  const session = await CpuSession.create(resolved.path, { threads: 1 });
  const records: Uint8Array[][] = [];
  let perImage = 0;
  try {
    const spec = modelSpec(resolved, session.io);
    const side = spec.inputSize;
    for (const input of inputs) {
      const { image } = await decodeInput(input);
      const tensor = new Float32Array(tensorSize(side));
      const t = imageToTensor(image, side, resize, spec.normalization, tensor, 0);
      const sizes = new Int32Array([t.frameWidth, t.frameHeight]);
      const raw = await session.run({ images: tensor, sizes, batch: 1 });
      perImage = raw.perImage;
      records.push([
        bytesOf(tensor),
        bytesOf(BigInt64Array.from(sizes, (v) => BigInt(v))),
        bytesOf(BigInt64Array.from(raw.labels, (v) => BigInt(v))),
        bytesOf(raw.boxes),
        bytesOf(raw.scores),
      ]);
    }
    const tensors: TensorDesc[] = [
      { name: 'images', input: true, dtype: 'float32', shape: [-1, 3, side, side] },
      { name: 'orig_target_sizes', input: true, dtype: 'int64', shape: [-1, 2] },
      { name: 'labels', input: false, dtype: 'int64', shape: [-1, perImage] },
      { name: 'boxes', input: false, dtype: 'float32', shape: [-1, perImage, 4] },
      { name: 'scores', input: false, dtype: 'float32', shape: [-1, perImage] },
    ];
    // The recording's tensor order is the graph's (the simulated build checks it against the ONNX).
    const order = [...session.io.inputNames, ...session.io.outputNames];
    const index = order.map((name) => tensors.findIndex((t) => t.name === name));
    if (index.some((i) => i < 0) || order.length !== tensors.length) {
      throw new DeimError('ERR_MODEL_NOT_DEIMV2', `${resolved.path}: expected the tensors ${tensors.map((t) => t.name).join(', ')}, found ${order.join(', ')}`, { input: resolved.path });
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'deimv2-record-'));
    try {
      const recording = options.recordingOut ?? path.join(dir, 'recording.bin');
      await writeFileAtomic(recording, encodeRecording(index.map((i) => tensors[i]!), records.map((r) => index.map((i) => r[i]!))));
      const built = await probe.addon.buildEngine(
        { onnx: resolved.path, engine: options.out, precision: 'fp32', minBatch: 1, optBatch: maxBatch, maxBatch, device: options.device ?? 0, recording },
        options.onProgress,
      ).catch((e: unknown) => {
        throw new DeimError('ERR_BACKEND_FAILED', `the simulated runtime could not build ${options.out}: ${(e as Error).message}`, { input: options.out, cause: e });
      });
      return { engine: built.engine, recorded: records.length, bytes: built.bytes };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  } finally {
    await session.close();
  }
}
