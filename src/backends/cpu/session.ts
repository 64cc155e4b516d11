/**
 * The CPU backend: one onnxruntime-node InferenceSession, created once and reused, with full
 * graph optimisation. Checks on load that the graph is a DEIMv2 export.
 */
import type * as Ort from 'onnxruntime-node';
import { requireOrt } from '../../cjs.js';
import { DeimError, errorMessage } from '../../errors.js';
import { timeStageAsync } from '../../perf/stage-times.js';
import type { Backend, ModelIO, RawDetections, TensorBatch } from '../types.js';

const ort = requireOrt();

export interface CpuSessionOptions {
  /** Intra-op threads (1 for a pool member, all cores for the single-session layout). */
  threads: number;
}

type Metadata = { name: string; isTensor: boolean; type?: string; shape?: ReadonlyArray<number | string> };

export class CpuSession implements Backend {
  readonly name = 'cpu' as const;
  readonly maxBatch = Infinity;
  readonly description: string;
  readonly io: ModelIO;
  private session: Ort.InferenceSession | undefined;

  private constructor(session: Ort.InferenceSession, io: ModelIO, threads: number) {
    this.session = session;
    this.io = io;
    this.description = `onnxruntime-node ${ort.env.versions?.node ?? ''} CPU, ${threads} thread${threads === 1 ? '' : 's'}`;
  }

  static async create(modelPath: string, options: CpuSessionOptions): Promise<CpuSession> {
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelPath, {
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: options.threads,
        interOpNumThreads: 1,
        executionProviders: ['cpu'],
        // Idle intra-op threads sleep instead of spinning: spinning burns a core per thread between
        // runs, which other sessions, decoders and processes need more.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
    } catch (e) {
      throw new DeimError('ERR_MODEL_INVALID', `${modelPath}: onnxruntime cannot load this model: ${errorMessage(e).split('\n')[0]}`, { input: modelPath, cause: e });
    }
    try {
      return new CpuSession(session, checkDeimv2Graph(session, modelPath), options.threads);
    } catch (e) {
      await session.release().catch(() => undefined);
      throw e;
    }
  }

  async run(batch: TensorBatch): Promise<RawDetections> {
    const session = this.session;
    if (!session) throw new DeimError('ERR_CLOSED', 'the CPU session is closed');
    const n = batch.batch;
    const side = this.io.inputSize;
    if (!Number.isInteger(n) || n < 1) throw new DeimError('ERR_INVALID_ARGUMENT', `batch must be a positive integer, got ${n}`);
    if (!(batch.images instanceof Float32Array)) throw new DeimError('ERR_INVALID_ARGUMENT', 'images must be a Float32Array');
    const perImage = batch.images.length / n;
    const s = side ?? Math.round(Math.sqrt(perImage / 3));
    if (batch.images.length !== n * 3 * s * s) {
      throw new DeimError('ERR_TENSOR_SIZE', `images has ${batch.images.length} floats, expected ${n}x3x${s}x${s} = ${n * 3 * s * s} for a batch of ${n}`);
    }
    if (!(batch.sizes instanceof Int32Array) || batch.sizes.length !== 2 * n) {
      throw new DeimError('ERR_TENSOR_SIZE', `sizes must be an Int32Array of ${2 * n} values (width, height per image)`);
    }
    // A fresh buffer per call: onnxruntime reads inputs after run() returns, so a buffer shared by
    // concurrent calls would give one image another's size.
    const sizes = BigInt64Array.from(batch.sizes.subarray(0, 2 * n), (v) => BigInt(v));
    let out: Ort.InferenceSession.OnnxValueMapType;
    try {
      out = await timeStageAsync('infer', () => session.run({
        images: new ort.Tensor('float32', batch.images, [n, 3, s, s]),
        orig_target_sizes: new ort.Tensor('int64', sizes, [n, 2]),
      }));
    } catch (e) {
      throw new DeimError('ERR_BACKEND_FAILED', `onnxruntime run failed: ${errorMessage(e)}`, { cause: e });
    }
    const labels = out.labels!, boxes = out.boxes!, scores = out.scores!;
    const k = scores.dims[1] as number;
    const labelData = labels.data as BigInt64Array | Int32Array;
    const labels32 = labelData instanceof Int32Array ? labelData : Int32Array.from(labelData, Number);
    return { batch: n, perImage: k, labels: labels32, boxes: boxes.data as Float32Array, scores: scores.data as Float32Array };
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    await s?.release();
  }
}

function describeMeta(list: readonly Metadata[]): string {
  return list.map((m) => `${m.name}${m.isTensor ? ` ${m.type ?? '?'} [${(m.shape ?? []).join(',')}]` : ''}`).join(', ') || '(none)';
}

/** Throws ERR_MODEL_NOT_DEIMV2 unless the graph has DEIMv2's inputs and outputs. */
export function checkDeimv2Graph(session: Ort.InferenceSession, modelPath: string): ModelIO {
  const inputs = (session as unknown as { inputMetadata: readonly Metadata[] }).inputMetadata ?? [];
  const outputs = (session as unknown as { outputMetadata: readonly Metadata[] }).outputMetadata ?? [];
  const byName = (list: readonly Metadata[], n: string) => list.find((m) => m.name === n);
  const images = byName(inputs, 'images');
  const sizes = byName(inputs, 'orig_target_sizes');
  const problems: string[] = [];
  if (!images || images.type !== 'float32' || images.shape?.length !== 4 || (typeof images.shape[1] === 'number' && images.shape[1] !== 3)) {
    problems.push('input "images" float32 [N,3,H,W]');
  }
  if (!sizes || sizes.type !== 'int64' || sizes.shape?.length !== 2) problems.push('input "orig_target_sizes" int64 [N,2]');
  for (const name of ['labels', 'boxes', 'scores']) if (!byName(outputs, name)) problems.push(`output "${name}"`);
  if (problems.length > 0 || inputs.length !== 2) {
    throw new DeimError(
      'ERR_MODEL_NOT_DEIMV2',
      `${modelPath} is not a DEIMv2 export: expected inputs images float32 [N,3,H,W] and orig_target_sizes int64 [N,2], ` +
        `outputs labels, boxes, scores; it has inputs ${describeMeta(inputs)} and outputs ${describeMeta(outputs)}` +
        (problems.length ? ` (missing or wrong: ${problems.join('; ')})` : ''),
      { input: modelPath },
    );
  }
  const h = images!.shape![2], w = images!.shape![3];
  let inputSize: number | undefined;
  if (typeof h === 'number' && typeof w === 'number') {
    if (h !== w) throw new DeimError('ERR_MODEL_NOT_DEIMV2', `${modelPath}: input "images" is ${w}x${h}; DEIMv2 exports take a square input`, { input: modelPath });
    inputSize = h;
  }
  return { inputSize, inputNames: inputs.map((m) => m.name), outputNames: outputs.map((m) => m.name) };
}
