/**
 * Prometheus metrics (prom-client), one registry per service: per-stream frames, drops and
 * reconnects (labelled by the stream's id, never its source), the batch sizes, the latency from
 * a frame decoded to its event sent, and the process metrics.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly frames = new Counter({ name: 'deimv2_stream_frames_total', help: 'Frames processed per stream', labelNames: ['stream'], registers: [this.registry] });
  readonly dropped = new Counter({ name: 'deimv2_stream_dropped_frames_total', help: 'Frames of live streams dropped because detection was behind', labelNames: ['stream'], registers: [this.registry] });
  readonly reconnects = new Counter({ name: 'deimv2_stream_reconnects_total', help: 'Reconnections per stream (after a failure, an end or a stall)', labelNames: ['stream'], registers: [this.registry] });
  readonly clientDropped = new Counter({ name: 'deimv2_client_events_dropped_total', help: 'Events and MJPEG frames not sent to a client that was not reading (its backlog over the limit)', labelNames: ['stream'], registers: [this.registry] });
  readonly clientsClosed = new Counter({ name: 'deimv2_slow_clients_closed_total', help: 'Event and MJPEG clients closed for not reading (over the backlog limit too long)', labelNames: ['stream'], registers: [this.registry] });
  readonly batchSize = new Histogram({ name: 'deimv2_inference_batch_size', help: 'Frames per detector call', buckets: [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64], registers: [this.registry] });
  readonly latency = new Histogram({
    name: 'deimv2_frame_latency_seconds',
    help: 'From a frame decoded to its event sent',
    buckets: [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2, 5],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Removes a deleted stream's series. */
  forget(stream: string): void {
    for (const c of [this.frames, this.dropped, this.reconnects, this.clientDropped, this.clientsClosed]) c.remove({ stream });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}
