/**
 * The live multi-camera service behind `deimv2 serve`: one Detector, many streams (a supervisor
 * each, stream.ts) through one cross-stream batcher, Prometheus metrics; start.ts starts it with
 * its HTTP API (http.ts).
 */
import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { Detector, DetectorOptions } from '../detector.js';
import { DeimError } from '../errors.js';
import type { RgbImage } from '../image/types.js';
import type { VideoFrameResult } from '../video/pipeline.js';
import type { FrameBatcher } from './batcher.js';
import { checkStream, MAX_STREAMS, resolveAllowDirs, type CheckedStream, type StreamConfig } from './config.js';
import { ServiceMetrics } from './metrics.js';
import { redactText } from './redact.js';
import { StreamRunner, type StreamTiming } from './stream.js';

export interface ServiceOptions {
  /** The detector (model, backend, threads, ...); its `batch` is taken from `batch` below. */
  detector?: Omit<DetectorOptions, 'batch' | 'preload'>;
  /** A config file (JSON, or YAML by its extension) holding `{ streams: [...] }`. */
  config?: string;
  /** Streams to start with (after those of `config`). */
  streams?: StreamConfig[];
  /** Address to listen on (default 127.0.0.1). Anything but loopback needs `apiKey`. */
  host?: string;
  /** Port (default 8080; 0 picks a free one). */
  port?: number;
  /** Frames per detector call, across streams (default 1). */
  batch?: number;
  /** Longest wait for a full batch in milliseconds (default 10). */
  batchTimeoutMs?: number;
  /** Folders local file sources may be under (default: none). */
  allowDirs?: string[];
  /** Mutating calls need `Authorization: Bearer <apiKey>` (default: $DEIMV2_API_KEY). */
  apiKey?: string;
  /** Largest image body of POST /v1/detect in bytes (default 20 MiB). */
  maxImageBytes?: number;
  /**
   * Bytes an event or MJPEG client may have waiting in its response (default 4 MiB): beyond, its
   * events are dropped (counted in deimv2_client_events_dropped_total) until it catches up.
   */
  maxClientBacklogBytes?: number;
  /** A client held over maxClientBacklogBytes this long is closed (counted; default 30000 ms). */
  slowClientMs?: number;
  /** Streams at once (default and most: MAX_STREAMS, 256); beyond, POST /v1/streams is 400 naming the limit. */
  maxStreams?: number;
  /** Event and MJPEG responses open at once (default 1024); beyond, 503 ERR_BUSY. */
  maxClients?: number;
  /** A request's body must have arrived this long after it began (default 30000 ms): 408 ERR_INPUT_TIMEOUT. */
  requestTimeoutMs?: number;
  /** Makes the detector (default Detector.create); the service listens, /health 503, until it resolves. */
  loadDetector?: (options: DetectorOptions) => Promise<Detector>;
  /** Stall, backoff and open timeouts of the streams (milliseconds). */
  timing?: Partial<StreamTiming>;
  /** Log lines (default: stderr); every line is redacted. */
  log?: (line: string) => void;
}

const DEFAULT_TIMING: StreamTiming = { stallMs: 5000, backoffMs: 1000, maxBackoffMs: 30_000, openTimeoutMs: 10_000 };

/** True for 127.0.0.0/8, ::1 and "localhost". */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '::ffff:127.0.0.1';
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) throw new DeimError('ERR_INVALID_ARGUMENT', `${name} must be a number above 0, got ${String(value)}`, { input: name });
  return value;
}

type FrameListener = (frame: VideoFrameResult, image: RgbImage) => void;

export class Service {
  /** http://host:port */
  url = '';
  detector: Detector | undefined;
  batcher: FrameBatcher | undefined;
  readonly metrics = new ServiceMetrics();
  readonly streams = new Map<string, StreamRunner>();
  /** Per stream: the event and MJPEG listeners. */
  readonly listeners = new Map<string, Set<FrameListener>>();
  /** Open event/MJPEG responses, ended on close. */
  readonly clients = new Set<{ end(): void; stream: string; buffered(): number }>();
  readonly allowDirs: string[];
  readonly apiKey: string | undefined;
  readonly maxImageBytes: number;
  readonly maxClientBacklogBytes: number;
  readonly slowClientMs: number;
  readonly maxClients: number;
  readonly maxStreams: number;
  readonly requestTimeoutMs: number;
  stopping = false;
  private closing: Promise<void> | undefined;
  private readonly timing: StreamTiming;
  closeHttp: () => Promise<void> = async () => {};

  constructor(readonly options: ServiceOptions) {
    const host = options.host ?? '127.0.0.1';
    this.apiKey = options.apiKey ?? (process.env.DEIMV2_API_KEY || undefined);
    if (this.apiKey !== undefined && this.apiKey.length < 8) throw new DeimError('ERR_INVALID_ARGUMENT', '--api-key must be at least 8 characters');
    if (!isLoopback(host) && this.apiKey === undefined) {
      throw new DeimError('ERR_INVALID_ARGUMENT', `--host ${host}: listening beyond this machine needs an API key (--api-key or DEIMV2_API_KEY); without one the service binds loopback (127.0.0.1) only`, { input: host });
    }
    this.allowDirs = resolveAllowDirs(options.allowDirs ?? []);
    this.maxImageBytes = options.maxImageBytes ?? 20 * 1024 * 1024;
    this.maxClientBacklogBytes = positive(options.maxClientBacklogBytes, 4 * 1024 * 1024, 'maxClientBacklogBytes');
    this.slowClientMs = positive(options.slowClientMs, 30_000, 'slowClientMs');
    this.maxClients = positive(options.maxClients, 1024, 'maxClients');
    this.maxStreams = Math.min(MAX_STREAMS, positive(options.maxStreams, MAX_STREAMS, 'maxStreams'));
    this.requestTimeoutMs = positive(options.requestTimeoutMs, 30_000, 'requestTimeoutMs');
    this.timing = { ...DEFAULT_TIMING, ...options.timing };
  }

  log(line: string): void {
    const text = redactText(line, [...this.streams.values()].map((s) => s.config.source));
    (this.options.log ?? ((l: string) => process.stderr.write(l + '\n')))(`${new Date().toISOString()} deimv2 serve: ${text}`);
  }

  /** True when `header` is "Bearer <the key>" (or no key is set). */
  authorized(header: string | undefined): boolean {
    if (this.apiKey === undefined) return true;
    const want = Buffer.from(`Bearer ${this.apiKey}`);
    const got = Buffer.from(header ?? '');
    return got.length === want.length && timingSafeEqual(got, want);
  }

  /** Checks a stream's config against the loaded model (classes) and the allowed folders. */
  check(config: unknown, where = ''): CheckedStream {
    return checkStream(config, { allowDirs: this.allowDirs, ...(this.detector ? { classes: this.detector.classes } : {}) }, where);
  }

  /** Adds and starts a checked stream. Throws ERR_INVALID_ARGUMENT for an id already in use. */
  add(config: CheckedStream): StreamRunner {
    if (this.stopping) throw new DeimError('ERR_CLOSED', 'the service is stopping');
    if (this.streams.size >= this.maxStreams) throw new DeimError('ERR_INVALID_ARGUMENT', `the service runs ${this.streams.size} streams, its limit: remove one first`, { input: 'streams' });
    if (this.streams.has(config.id)) throw new DeimError('ERR_INVALID_ARGUMENT', `id: a stream "${config.id}" exists already`, { input: 'id' });
    const detector = this.detector!;
    const batcher = this.batcher!;
    const runner = new StreamRunner(config, {
      detect: (image, o, limit) => batcher.submit(config.id, image, o, limit),
      idle: () => batcher.idle(config.id),
      threshold: detector.threshold,
      maxMemory: detector.maxMemory,
      runners: detector.stats().runners,
      batch: this.options.batch ?? 1,
      log: (l) => this.log(l),
      onFrame: (stream, frame, latency) => {
        this.metrics.frames.inc({ stream: stream.id });
        this.emit(stream.id, frame);
        this.metrics.latency.observe(latency);
      },
      onDropped: (stream, n) => this.metrics.dropped.inc({ stream: stream.id }, n),
      onReconnect: (stream) => this.metrics.reconnects.inc({ stream: stream.id }),
    }, this.timing);
    this.streams.set(config.id, runner);
    for (const c of [this.metrics.frames, this.metrics.dropped, this.metrics.reconnects]) c.inc({ stream: config.id }, 0);
    runner.start();
    return runner;
  }

  /** Stops and removes a stream; its event and MJPEG responses end. */
  async remove(id: string): Promise<boolean> {
    const runner = this.streams.get(id);
    if (!runner) return false;
    this.streams.delete(id);
    for (const client of [...this.clients]) if (client.stream === id) client.end();
    this.listeners.delete(id);
    await runner.stop();
    this.batcher?.removeStream(id);
    this.metrics.forget(id);
    return true;
  }

  /** Hands a processed frame of stream `id` to its event and MJPEG clients. */
  emit(id: string, frame: VideoFrameResult): void {
    for (const listener of this.listeners.get(id) ?? []) listener(frame, frame.image!);
  }

  listen(id: string, listener: FrameListener): () => void {
    let set = this.listeners.get(id);
    if (!set) this.listeners.set(id, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  /**
   * Stops: takes no new frames, finishes those in detection, ends the event streams, closes the
   * HTTP server and the detector (every ffmpeg is gone when it settles). Safe to call twice.
   */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.stopping = true;
      await Promise.all([...this.streams.values()].map((s) => s.stop()));
      await this.batcher?.close();
      for (const client of [...this.clients]) client.end();
      await this.closeHttp();
      await this.detector?.close();
    })());
  }

  /** Quits now (a second signal): every decoder is killed; nothing is awaited. */
  kill(): void {
    this.stopping = true;
    for (const s of this.streams.values()) s.kill();
  }
}
