/**
 * `deimv2 serve` runs for days: nothing it holds may grow with the time it has run. Probed here:
 * the tracking session's per-track state (line sides, dwell entries, seen tracks) over thousands of
 * tracks; event (SSE) and MJPEG clients that never read (their buffered bytes stay under the
 * service's limit, the events they miss are counted, and a client stuck past the limit is closed
 * and counted); many clients that connect and leave (nothing left behind of them).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../dist/serve/index.js';
import type { Service } from '../dist/serve/service.js';
import { TrackSession } from '../dist/track/session.js';
import { MODEL_DIR } from './helpers/paths.js';
import { readEventIds, until } from './helpers/serve.js';

const LIMIT = 256 * 1024;
const SLOW_MS = 1500;
const MAX_CLIENTS = 40;
let service: Service;
let port: number;

beforeAll(async () => {
  service = await startService({ port: 0, detector: { modelDir: MODEL_DIR }, log: () => {}, maxClientBacklogBytes: LIMIT, slowClientMs: SLOW_MS, maxClients: MAX_CLIENTS });
  port = Number(new URL(service.url).port);
  // A camera nobody serves: the stream exists (its clients can connect); the test hands it frames itself.
  service.add(service.check({ id: 'cam', source: 'rtsp://127.0.0.1:9/none' }));
}, 60_000);

afterAll(async () => {
  await service?.close();
});

/** A client that sends a GET and then never reads a byte (its socket paused). */
function neverReads(route: string): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`GET ${route} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      socket.pause();
      const closed = new Promise<void>((r) => socket.once('close', () => r()));
      resolve({ socket, closed });
    });
    socket.once('error', reject);
  });
}

/** A frame of stream "cam" as the pipeline gives it: 50 detections (an event of about 6 KB). */
function frameOf(n: number, image?: { width: number; height: number; data: Buffer }) {
  const detections = Array.from({ length: 50 }, (_, i) => ({ box: [i, i, i + 100.123456, i + 80.654321], score: 0.876543, classId: 2, label: 'car', categoryId: 3 }));
  return { frame: n, pts: n / 25, width: 768, height: 432, detections, ...(image ? { image } : {}) };
}

const metric = async (name: string) => Number(new RegExp(`^${name}\\{stream="cam"\\} (\\S+)$`, 'm').exec(await service.metrics.text())?.[1] ?? 0);

/** Frames of cars crossing a line and a zone left to right: a new one every `every` frames, each seen for `life` frames. */
function* traffic(frames: number, every = 10, life = 40) {
  for (let f = 0; f < frames; f++) {
    const detections = [];
    for (let start = Math.max(0, f - life + 1); start <= f; start++) {
      if (start % every !== 0) continue;
      const x = 20 + (f - start) * 25; // 20 .. 995 px over its life
      const y = 100 + ((start / every) % 4) * 120; // four lanes, so cars never overlap
      detections.push({ box: [x, y, x + 60, y + 40], score: 0.9, classId: 2, label: 'car' });
    }
    yield { frame: f, detections };
  }
}

describe('the tracking session of a stream that runs for days', () => {
  it('holds per-track state for live tracks only; counts stay exact; the dwell list keeps the newest', () => {
    const options = { lines: ['500,0,500,720:gate'], zones: ['300,0,700,0,700,720,300,720:yard'] };
    const capped = new TrackSession({ ...options, maxDwellEntries: 50 });
    const full = new TrackSession(options);
    let most = { tracks: 0, lineStates: 0, dwellEntries: 0 };
    for (const { frame, detections } of traffic(6000)) {
      const a = capped.update(frame, detections);
      const b = full.update(frame, detections);
      expect(a.counts).toEqual(b.counts);
      const r = capped.retained();
      most = { tracks: Math.max(most.tracks, r.tracks), lineStates: Math.max(most.lineStates, r.lineStates), dwellEntries: Math.max(most.dwellEntries, r.dwellEntries) };
    }
    const s = capped.summary();
    const ref = full.summary();
    // 600 cars, each crossing the line once and visiting the zone once (the last one not yet).
    expect(ref.tracks).toBe(600);
    expect(ref.lines[0]!.totalIn + ref.lines[0]!.totalOut).toBe(599);
    expect(s.tracks).toBe(ref.tracks);
    expect(s.tracksByClass).toEqual(ref.tracksByClass);
    expect(s.lines).toEqual(ref.lines);
    expect(s.zones[0]!.visitors).toEqual({ car: 599 });
    expect(s.zones[0]!.visitors).toEqual(ref.zones[0]!.visitors);
    expect(s.zones[0]!.maxOccupancy).toBe(ref.zones[0]!.maxOccupancy);
    // The capped list is the newest part of the full one.
    expect(ref.zones[0]!.dwell).toHaveLength(599);
    expect(s.zones[0]!.dwell.length).toBeLessThan(50 + 60);
    expect(s.zones[0]!.dwell.length).toBeGreaterThanOrEqual(50);
    expect(s.zones[0]!.dwell).toEqual(ref.zones[0]!.dwell.slice(-s.zones[0]!.dwell.length));
    // Bounded by the tracks alive in one prune period (256 frames: ~26 new cars + the tracker's buffer), not by 600.
    expect(most.tracks).toBeLessThan(60);
    expect(most.lineStates).toBeLessThan(60);
    expect(most.dwellEntries).toBeLessThan(50 + 60);
    // Without a cap (detect's summary of a video) every dwell entry stays.
    expect(full.retained().dwellEntries).toBe(599);
    expect(full.retained().lineStates).toBeLessThan(60);
  });
});

describe('clients that read slowly or never', () => {
  it('an event client that never reads: its buffered bytes stay under the limit, its missed events are counted, then it is closed', async () => {
    const slow = await neverReads('/v1/streams/cam/events');
    await until('the slow client connected', () => service.clients.size === 1);
    // A client that reads, on the same stream, gets the events all along.
    const controller = new AbortController();
    const res = await fetch(`${service.url}/v1/streams/cam/events`, { signal: controller.signal });
    const reader = res.body!.getReader();
    let received = 0;
    let lastFrame = -1;
    const reading = readEventIds(reader, (id) => {
      received++;
      lastFrame = id;
    }).catch(() => undefined);
    let most = 0;
    let n = 0;
    const t0 = performance.now();
    // ~6 KB events, 20 every 10 ms, until the slow client is closed: far more than its socket and the limit hold.
    while (service.clients.size === 2 || n < 400) {
      for (let k = 0; k < 20; k++) service.emit('cam', frameOf(n++) as never);
      for (const c of service.clients) most = Math.max(most, c.buffered());
      await new Promise((r) => setTimeout(r, 10));
      if (performance.now() - t0 > 30_000) throw new Error(`the slow client was not closed in 30 s (${n} events, ${service.clients.size} clients)`);
    }
    // The paused client sees the end once it reads again.
    slow.socket.resume();
    await slow.closed;
    // Bounded: the limit plus one event (the one that went over it).
    expect(most).toBeLessThanOrEqual(LIMIT + 8 * 1024);
    expect(most).toBeGreaterThan(LIMIT / 2);
    expect(await metric('deimv2_client_events_dropped_total')).toBeGreaterThan(0);
    expect(await metric('deimv2_slow_clients_closed_total')).toBe(1);
    // The reading client is still there and has the newest events.
    expect(service.clients.size).toBe(1);
    service.emit('cam', frameOf(n++) as never);
    await until('the reading client has the newest event', () => lastFrame === n - 1, 20_000, 20);
    expect(received).toBeGreaterThan(400);
    controller.abort();
    await reading;
    await until('no client left', () => service.clients.size === 0);
    expect(service.listeners.get('cam')?.size ?? 0).toBe(0);
  }, 60_000);

  it('an MJPEG client that never reads: bounded the same way, then closed', async () => {
    const closedBefore = await metric('deimv2_slow_clients_closed_total');
    const slow = await neverReads('/v1/streams/cam/mjpeg');
    await until('the MJPEG client connected', () => service.clients.size === 1);
    // Noise compresses badly: each JPEG is some hundred KB, so a few frames fill the socket and the limit.
    const data = Buffer.alloc(768 * 432 * 3);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919 + (i >> 5) * 104729) & 255;
    const image = { width: 768, height: 432, data };
    let most = 0;
    let n = 0;
    const t0 = performance.now();
    while (service.clients.size === 1) {
      service.emit('cam', frameOf(n++, image) as never);
      for (const c of service.clients) most = Math.max(most, c.buffered());
      await new Promise((r) => setTimeout(r, 30));
      if (performance.now() - t0 > 30_000) throw new Error(`the MJPEG client was not closed in 30 s (${n} frames)`);
    }
    // The paused client sees the end once it reads again.
    slow.socket.resume();
    await slow.closed;
    expect(n).toBeGreaterThan(3);
    expect(most).toBeLessThanOrEqual(LIMIT + 1024 * 1024); // the limit plus one JPEG part
    expect(await metric('deimv2_slow_clients_closed_total')).toBe(closedBefore + 1);
  }, 60_000);

  it('many clients connecting and leaving leave nothing behind; beyond maxClients it is 503 ERR_BUSY', async () => {
    for (let round = 0; round < 3; round++) {
      const open = await Promise.all(Array.from({ length: MAX_CLIENTS }, async (_, i) => {
        const controller = new AbortController();
        const res = await fetch(`${service.url}/v1/streams/cam/${i % 4 === 0 ? 'mjpeg' : 'events'}`, { signal: controller.signal });
        expect(res.status).toBe(200);
        return { controller, res };
      }));
      await until('every client registered', () => service.clients.size === MAX_CLIENTS);
      const refused = await fetch(`${service.url}/v1/streams/cam/events`);
      expect(refused.status).toBe(503);
      expect((await refused.json()).error.code).toBe('ERR_BUSY');
      service.emit('cam', frameOf(100_000 + round, { width: 4, height: 2, data: Buffer.alloc(24, 128) }) as never);
      for (const { controller } of open) controller.abort();
      await until('every client gone', () => service.clients.size === 0, 20_000);
      expect(service.listeners.get('cam')?.size ?? 0).toBe(0);
    }
    // Still serving.
    expect((await fetch(`${service.url}/health`)).status).toBe(200);
  }, 90_000);
});

describe('the cross-stream batcher over streams that come and go', () => {
  it('sends a partial batch at once when every stream with frames out is at its limit (no wait for frames that cannot come)', async () => {
    const { FrameBatcher } = await import('../dist/serve/batcher.js');
    const sizes: number[] = [];
    const detector = { detectBatch: async (inputs: readonly unknown[]) => { sizes.push(inputs.length); return inputs.map(() => ({ width: 1, height: 1, detections: [] })); } };
    // batch 8, a 60 s timeout: before, 4 frames of a stream with 4 in detection at most waited the whole timeout.
    const batcher = new FrameBatcher(detector as never, { batch: 8, timeoutMs: 60_000, maxInFlight: 2 });
    const t0 = performance.now();
    await Promise.all([1, 2, 3, 4].map(() => batcher.submit('file', Buffer.alloc(1), {}, 4)));
    expect(performance.now() - t0).toBeLessThan(20_000);
    expect(sizes).toEqual([4]);
    // A stream below its limit (or one without a limit: POST /v1/detect) still waits for a fuller batch.
    let settled = false;
    const partial = Promise.all([batcher.submit('file', Buffer.alloc(1), {}, 4), batcher.submit('', Buffer.alloc(1))]).then(() => (settled = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(settled).toBe(false);
    await batcher.close(); // sends what waits
    await partial;
    expect(sizes).toEqual([4, 2]);
  });

  it('fills batches from streams that each keep their limit in detection (no half batches taking turns), and stops waiting for an idle stream', async () => {
    const { FrameBatcher } = await import('../dist/serve/batcher.js');
    const sizes: number[] = [];
    const detector = { detectBatch: async (inputs: readonly unknown[]) => { sizes.push(inputs.length); await new Promise((r) => setTimeout(r, 2)); return inputs.map(() => ({ width: 1, height: 1, detections: [] })); } };
    const batcher = new FrameBatcher(detector as never, { batch: 8, timeoutMs: 5000, maxInFlight: 2 });
    // A file stream as the service runs one: `limit` frames in detection, the next sent as one settles; idle at its end.
    const stream = async (id: string, frames: number, limit = 4) => {
      const out = new Set<Promise<unknown>>();
      for (let i = 0; i < frames; i++) {
        if (out.size >= limit) await Promise.race(out);
        const p: Promise<unknown> = batcher.submit(id, Buffer.alloc(1), {}, limit).then(() => out.delete(p));
        out.add(p);
      }
      await Promise.all(out);
      batcher.idle(id);
    };
    const t0 = performance.now();
    // Two streams of 4 in detection each and --batch 8: before, they took turns with batches of 4
    // (mean batch 4.0 of 8 for 2 file streams on the simulated runtime); the first batch still goes
    // alone (a stream is known to the batcher once it has sent a frame).
    await Promise.all([stream('a', 200), stream('b', 200)]);
    const steady = sizes.slice(1, -1);
    expect(steady.reduce((a, b) => a + b, 0) / steady.length).toBeGreaterThan(7.5);
    // No batch waited the 5 s timeout: the last frames of one stream go once the other is idle.
    expect(performance.now() - t0).toBeLessThan(4000);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(400);
    await batcher.close();
  });

  it('keeps no queue of a removed stream, even one removed while its frames were waiting', async () => {
    const { FrameBatcher } = await import('../dist/serve/batcher.js');
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const detector = { detectBatch: async (inputs: readonly unknown[]) => { await gate; return inputs.map(() => ({ width: 1, height: 1, detections: [] })); } };
    const batcher = new FrameBatcher(detector as never, { batch: 1, timeoutMs: 0, maxInFlight: 1 });
    for (let round = 0; round < 50; round++) {
      const id = `s${round}`;
      const done = [batcher.submit(id, Buffer.alloc(1)), batcher.submit(id, Buffer.alloc(1)), batcher.submit(id, Buffer.alloc(1))];
      batcher.removeStream(id); // frames still waiting: they go out, then the queue goes
      if (round === 0) release();
      await Promise.all(done);
    }
    expect(batcher.streams).toBe(0);
    await batcher.close();
  });
});
