/**
 * The cross-stream batcher (DeepStream's nvstreammux): frames of every stream wait in a queue per
 * stream; a batch goes to the detector when `batch` frames are waiting, or with what is waiting
 * `timeoutMs` after the first of them came, whichever is first. Frames are taken round-robin over
 * the streams, so no stream starves. One batch is one detectBatch call of the Detector (whose
 * `batch` is the same number): one engine call on TensorRT, one job of the per-core pool on the
 * CPU, where `maxInFlight` batches at once keep every worker busy.
 *
 * The queues hold only what the streams put in: each stream's video pipeline has a bounded
 * number of frames in detection (live streams 2), so memory is bounded at any number of streams.
 */
import type { DetectOptions } from '../detector.js';
import { DeimError } from '../errors.js';
import type { ImageInput } from '../image/input.js';
import type { DetectionFailure, DetectionResult } from '../postprocess/types.js';

/** What the batcher needs from a detector (Detector satisfies it). */
export interface BatchDetector {
  detectBatch(inputs: readonly ImageInput[], options?: DetectOptions): Promise<Array<DetectionResult | DetectionFailure>>;
}

export interface BatcherOptions {
  /** Frames per call (default 1). */
  batch: number;
  /** Longest wait for a full batch, in milliseconds (default 10). */
  timeoutMs: number;
  /** Batches in detection at once (default 2). */
  maxInFlight: number;
  /** Called with each batch's size as it goes out (metrics). */
  onBatch?: (size: number) => void;
}

interface Item {
  input: ImageInput;
  options: DetectOptions;
  key: string;
  resolve: (r: DetectionResult) => void;
  reject: (e: unknown) => void;
}

export class FrameBatcher {
  private readonly queues = new Map<string, Item[]>();
  /** Removed streams whose queues still hold frames. */
  private readonly removed = new Set<string>();
  /** The stream after which the next batch starts taking frames. */
  private cursor = 0;
  private waiting = 0;
  private inFlight = 0;
  private readonly running = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /**
   * Per stream: frames submitted and not yet settled (queued or in detection), the most it has at
   * once, and whether it is idle (no frame coming: ended, reconnecting, removed). A stream with a
   * limit stays here at 0 frames while active: its next frames can come, so a batch waits for them.
   */
  private readonly outstanding = new Map<string, { n: number; limit: number | undefined; idle: boolean }>();
  /** Batches sent, and frames in them. */
  batches = 0;
  frames = 0;

  constructor(
    private readonly detector: BatchDetector,
    private readonly options: BatcherOptions,
  ) {}

  /**
   * Queues one frame (or image) of `stream`; resolves with its detections. `limit`: the most
   * frames the stream has submitted and unsettled at once (its video pipeline's frames in
   * detection): when every stream with frames out is at its limit, no frame can come before one
   * settles, so a batch goes now instead of waiting timeoutMs for frames that cannot come.
   */
  submit(stream: string, input: ImageInput, options: DetectOptions = {}, limit?: number): Promise<DetectionResult> {
    if (this.closed) return Promise.reject(new DeimError('ERR_CLOSED', 'the service is stopping'));
    return new Promise<DetectionResult>((resolve, reject) => {
      let queue = this.queues.get(stream);
      if (!queue) this.queues.set(stream, (queue = []));
      const out = this.outstanding.get(stream) ?? { n: 0, limit, idle: false };
      out.n++;
      out.limit = limit;
      out.idle = false;
      this.outstanding.set(stream, out);
      const settle = () => {
        if (--out.n === 0 && (out.limit === undefined || out.idle) && this.outstanding.get(stream) === out) this.outstanding.delete(stream);
      };
      queue.push({
        input, options, key: JSON.stringify(options),
        resolve: (r) => {
          settle();
          resolve(r);
        },
        reject: (e) => {
          settle();
          reject(e);
        },
      });
      this.waiting++;
      this.pump();
    });
  }

  /**
   * True when no more frames can come before one settles: every active stream is at its limit
   * (an idle one sends nothing more; a caller without a limit, POST /v1/detect, may).
   */
  private allAtLimit(): boolean {
    for (const { n, limit, idle } of this.outstanding.values()) if (!idle && (limit === undefined || n < limit)) return false;
    return true;
  }

  /**
   * `stream` sends no frame for now (its source ended, failed or is reconnecting): batches stop
   * waiting for its frames until it submits again.
   */
  idle(stream: string): void {
    const out = this.outstanding.get(stream);
    if (!out) return;
    out.idle = true;
    if (out.n === 0) this.outstanding.delete(stream);
    this.pump();
  }

  /** Frames waiting (not yet in detection). */
  get queued(): number {
    return this.waiting;
  }

  /** Streams with a queue (tests: removed streams leave none behind). */
  get streams(): number {
    return this.queues.size;
  }

  /** Frames of `stream` waiting. */
  queuedFor(stream: string): number {
    return this.queues.get(stream)?.length ?? 0;
  }

  /** Forgets a removed stream: its queue goes now, or once its last frames have gone out. */
  removeStream(stream: string): void {
    this.idle(stream);
    if ((this.queues.get(stream)?.length ?? 0) === 0) this.queues.delete(stream);
    else this.removed.add(stream);
  }

  private pump(): void {
    while (this.waiting > 0 && this.inFlight < this.options.maxInFlight) {
      // Not a full batch yet: wait for more, at most timeoutMs from now; but with nothing in
      // detection and every active stream at its limit, no frame can come: send what waits now.
      // (With a batch in detection, its streams' next frames come when it settles: waiting for
      // them fills this batch instead of two streams taking turns with half batches.)
      if (this.waiting < this.options.batch && !this.closed && !(this.inFlight === 0 && this.allAtLimit())) {
        this.timer ??= setTimeout(() => {
          this.timer = undefined;
          this.flush();
        }, this.options.timeoutMs);
        return;
      }
      this.flush();
    }
  }

  /** Sends what is waiting, up to one batch, now. */
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting === 0 || this.inFlight >= this.options.maxInFlight) return;
    const items = this.takeRoundRobin(this.options.batch);
    // Frames with other per-call options (a stream's own threshold or classes) go in calls of their own.
    const groups = new Map<string, Item[]>();
    for (const item of items) groups.set(item.key, [...(groups.get(item.key) ?? []), item]);
    for (const group of groups.values()) this.send(group);
    this.pump();
  }

  private takeRoundRobin(max: number): Item[] {
    const ids = [...this.queues.keys()];
    const out: Item[] = [];
    let empty = 0;
    while (out.length < max && empty < ids.length) {
      const id = ids[this.cursor % ids.length]!;
      this.cursor = (this.cursor + 1) % ids.length;
      const item = this.queues.get(id)!.shift();
      if (item) {
        out.push(item);
        empty = 0;
      } else empty++;
    }
    this.waiting -= out.length;
    for (const id of this.removed) {
      if ((this.queues.get(id)?.length ?? 0) > 0) continue;
      this.queues.delete(id);
      this.removed.delete(id);
    }
    return out;
  }

  private send(items: Item[]): void {
    this.inFlight++;
    this.batches++;
    this.frames += items.length;
    this.options.onBatch?.(items.length);
    const done = this.detector
      .detectBatch(items.map((i) => i.input), items[0]!.options)
      .then(
        (results) =>
          results.forEach((r, k) => {
            const item = items[k]!;
            if ('error' in r) item.reject(new DeimError(r.error.code as DeimError['code'], r.error.message));
            else item.resolve(r);
          }),
        (e: unknown) => items.forEach((i) => i.reject(e)),
      )
      .finally(() => {
        this.inFlight--;
        this.running.delete(done);
        this.pump();
      });
    this.running.add(done);
  }

  /** Takes no more frames; what is queued is still sent, and this settles when every batch has. */
  async close(): Promise<void> {
    this.closed = true;
    this.pump();
    while (this.running.size > 0 || this.waiting > 0) {
      await Promise.allSettled([...this.running]);
      this.pump();
      if (this.running.size === 0 && this.waiting > 0) this.flush();
    }
  }
}
