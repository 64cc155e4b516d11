/**
 * `deimv2 serve` with real parts: three RTSP cameras (GStreamer's rtsp-server on loopback), a
 * file stream, the real model and ffmpeg, the CLI as a child process. One service runs through
 * the file's tests; SIGTERM ends it last.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deimv2 } from './helpers/cli.js';
import { EXAMPLE, SHARED } from './helpers/paths.js';
import { freePort } from './helpers/redis.js';
import { rtspServerAvailable, startCamera, type TestCamera } from './helpers/rtsp.js';
import { alive, childrenNamed, readEventIds, startServe, until, type TestService } from './helpers/serve.js';

const VIDEO = path.join(SHARED, 'videos', 'car-detection.mp4');
const LINE = '0,250,768,250:gate';
const KEY = 'test-key-0123456789';
const PASSWORD = 'pa55-w0rd-secret';
const auth = { Authorization: `Bearer ${KEY}` };
const hasRtsp = rtspServerAvailable();

const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-serve-'));
const clip = path.join(tmp, 'car100.mp4');
let cams: TestCamera[] = [];
let service: TestService;
let reference: Promise<{ lines: unknown[] }>;

type Info = { id: string; source: string; state: string; frames: number; dropped: number; reconnects: number; fps: number; lastError?: string; counts?: { lines: unknown[]; zones: unknown[] } };
const streams = async (): Promise<Record<string, Info>> => Object.fromEntries(((await service.call('GET', '/v1/streams')).json.streams as Info[]).map((s) => [s.id, s]));

beforeAll(async () => {
  // The first 100 frames of the video (stream copy): the file stream and its `detect` reference.
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', VIDEO, '-frames:v', '100', '-map', '0:v:0', '-c', 'copy', clip]);
  const jsonl = path.join(tmp, 'ref.jsonl');
  reference = deimv2(['detect', clip, '--track', '--line', LINE, '--json', jsonl, '-q']).then((r) => {
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(readFileSync(jsonl, 'utf8').trim().split('\n').at(-1)!).summary;
  });
  cams = await Promise.all([0, 1, 2].map((i) => startCamera(VIDEO, { name: `cam${i + 1}` })));
  const withPassword = cams[0]!.url.replace('rtsp://', `rtsp://admin:${PASSWORD}@`);
  const config = path.join(tmp, 'streams.yaml');
  writeFileSync(config, [
    'streams:',
    `  - { id: cam1, source: "${withPassword}", lines: ["${LINE}"] }`,
    `  - { id: cam2, source: "${cams[1]!.url}" }`,
    `  - { id: cam3, source: "${cams[2]!.url}", track: true, maxFps: 2 }`,
    `  - { id: file, source: "${clip}", lines: ["${LINE}"] }`,
  ].join('\n') + '\n');
  service = await startServe(['--config', config, '--allow-dir', tmp, '--api-key', KEY]);
}, 120_000);

afterAll(async () => {
  await service?.stop('SIGKILL');
  await Promise.all(cams.map((c) => c.stop()));
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!hasRtsp)('deimv2 serve: many streams, one detector', () => {
  it('runs three RTSP cameras at once with results for each (and events in the detect --json record)', async () => {
    const s = await until('three cameras running with frames', async () => {
      const all = await streams();
      return ['cam1', 'cam2', 'cam3'].every((id) => all[id]?.state === 'running' && all[id]!.frames >= 3) && all;
    }, 60_000);
    expect(s.cam1!.counts!.lines).toHaveLength(1);
    expect(s.cam2!.counts).toBeUndefined();
    // maxFps: 2 of the camera's 12.5 frames a second are detected, the others skipped (not counted as dropped).
    await until('cam3 measured over its FPS window', async () => (await streams()).cam3!.fps > 0, 10_000);
    expect((await streams()).cam3!.fps).toBeLessThanOrEqual(2.5);
    // Server-Sent Events: one per frame, the JSON-lines record (frame, pts, detections, tracks, counts).
    const res = await fetch(`${service.url}/v1/streams/cam1/events`);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    while ((text.match(/^data: /gm) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const record = JSON.parse(text.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
    expect(Object.keys(record)).toEqual(['frame', 'pts', 'detections', 'tracks', 'counts']);
    expect(record.counts.lines.gate).toEqual({ in: expect.any(Number), out: expect.any(Number) });
  }, 90_000);

  it('a file stream drops nothing and counts exactly as detect FILE --track --line', async () => {
    const file = await until('the file stream ended', async () => ((await streams()).file?.state === 'ended' ? (await streams()).file : undefined), 90_000, 500);
    expect(file.frames).toBe(100);
    expect(file.dropped).toBe(0);
    expect(file.lastError).toBeUndefined();
    const ref = await reference;
    expect(file.counts!.lines).toEqual(ref.lines);
    expect(file.counts!.zones).toEqual([]);
  }, 120_000);

  it('POST /v1/detect answers exactly one entry of detect --json, through the batcher', async () => {
    const r = await deimv2(['detect', EXAMPLE, '--json', '-', '-q']);
    expect(r.code, r.stderr).toBe(0);
    const { width, height, detections } = JSON.parse(r.stdout).results[0];
    const got = await service.call('POST', '/v1/detect', new Uint8Array(readFileSync(EXAMPLE)), { 'Content-Type': 'image/jpeg', ...auth });
    expect(got.status, got.text).toBe(200);
    expect(got.json).toEqual({ width, height, detections });
    const wrongType = await service.call('POST', '/v1/detect', new Uint8Array(readFileSync(EXAMPLE)), { 'Content-Type': 'text/plain', ...auth });
    expect(wrongType.status).toBe(415);
    const notImage = await service.call('POST', '/v1/detect', new Uint8Array(Buffer.from('not an image at all')), { 'Content-Type': 'image/png', ...auth });
    expect(notImage.status).toBe(400);
    expect(notImage.json.error.code).toMatch(/^ERR_INPUT_(FORMAT|UNREADABLE)$/);
  }, 60_000);

  it('mutating calls need the API key (401); bad configs are 400 naming the field; POST 201, DELETE 204', async () => {
    // A camera nobody serves (the stream goes on reconnecting): a client killed mid-handshake can upset the test cameras' shared media.
    const body = { id: 'extra', source: 'rtsp://127.0.0.1:9/none' };
    expect((await service.call('POST', '/v1/streams', body)).status).toBe(401);
    expect((await service.call('POST', '/v1/streams', body, { Authorization: 'Bearer wrong-key-0000000' })).status).toBe(401);
    expect((await service.call('DELETE', '/v1/streams/cam2')).status).toBe(401);
    expect((await service.call('POST', '/v1/detect', new Uint8Array(readFileSync(EXAMPLE)), { 'Content-Type': 'image/jpeg' })).status).toBe(401);
    const bad = await service.call('POST', '/v1/streams', { ...body, lines: ['0,0,10'] }, auth);
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/^lines\[0\]: --line "0,0,10": needs exactly 4 numbers/);
    const badSource = await service.call('POST', '/v1/streams', { id: 'x', source: 'concat:a.mp4|b.mp4' }, auth);
    expect(badSource.status).toBe(400);
    expect(badSource.json.error.message).toMatch(/^source: .*protocol is not accepted/);
    const outside = await service.call('POST', '/v1/streams', { id: 'x', source: VIDEO }, auth);
    expect(outside.json.error.message).toMatch(/^source: .* is not under an --allow-dir/);
    expect((await service.call('POST', '/v1/streams', { id: 'x', source: cams[0]!.url, classes: ['unicorn'] }, auth)).json.error.message).toMatch(/^classes: /);
    expect((await service.call('POST', '/v1/streams', { id: 'cam1', source: cams[0]!.url }, auth)).json.error.message).toMatch(/^id: a stream "cam1" exists/);
    const created = await service.call('POST', '/v1/streams', body, auth);
    expect(created.status, created.text).toBe(201);
    expect(created.json).toMatchObject({ id: 'extra', source: body.source, state: 'starting' });
    expect((await service.call('GET', '/v1/streams/extra')).json.id).toBe('extra');
    // Its event stream ends when it is deleted.
    const events = await fetch(`${service.url}/v1/streams/extra/events`);
    const ended = (async () => {
      const reader = events.body!.getReader();
      while (!(await reader.read()).done);
      return true;
    })();
    expect((await service.call('DELETE', '/v1/streams/extra', undefined, auth)).status).toBe(204);
    expect(await ended).toBe(true);
    expect((await service.call('GET', '/v1/streams/extra')).status).toBe(404);
  }, 60_000);

  it('serves the newest annotated frame as JPEG and MJPEG, and the page at /', async () => {
    const jpeg = await fetch(`${service.url}/v1/streams/cam2/frame.jpg`);
    expect(jpeg.headers.get('content-type')).toBe('image/jpeg');
    expect([...new Uint8Array(await jpeg.arrayBuffer()).slice(0, 2)]).toEqual([0xff, 0xd8]);
    const mjpeg = await fetch(`${service.url}/v1/streams/cam2/mjpeg`);
    const type = mjpeg.headers.get('content-type')!;
    expect(type).toMatch(/^multipart\/x-mixed-replace; boundary=/);
    const reader = mjpeg.body!.getReader();
    let bytes = Buffer.alloc(0);
    while (!bytes.includes('\r\n\r\n')) bytes = Buffer.concat([bytes, (await reader.read()).value!]);
    await reader.cancel();
    expect(bytes.toString('latin1')).toContain(`--${type.split('boundary=')[1]}\r\nContent-Type: image/jpeg`);
    const page = await fetch(`${service.url}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
  }, 60_000);

  it('a camera killed and restarted on the same port reconnects and runs again; the others never stop', async () => {
    const before = await streams();
    const watch: Array<Record<string, Info>> = [];
    let watching = true;
    // The stream's events go on over the reconnection, its frame numbers too (the tracking session continues).
    const events = await fetch(`${service.url}/v1/streams/cam2/events`);
    const reader = events.body!.getReader();
    const frames: number[] = [];
    const reading = readEventIds(reader, (id) => frames.push(id)).catch(() => undefined);
    const watcher = (async () => {
      while (watching) {
        watch.push(await streams());
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    await cams[1]!.restart(1500);
    const back = await until('cam2 running again with new frames', async () => {
      const s = (await streams()).cam2!;
      return s.state === 'running' && s.reconnects > before.cam2!.reconnects && s.frames > before.cam2!.frames + 2 && s;
    }, 60_000);
    watching = false;
    await watcher;
    const seen = frames.length;
    await until('events after the reconnection', () => frames.length > seen + 1, 20_000);
    await reader.cancel();
    await reading;
    expect(frames.every((f, i) => i === 0 || f > frames[i - 1]!), frames.join(' ')).toBe(true);
    expect(back.lastError).toBeDefined();
    expect(watch.some((s) => s.cam2!.state === 'reconnecting')).toBe(true);
    for (const id of ['cam1', 'cam3']) {
      expect(watch.map((s) => s[id]!.state).filter((state) => state !== 'running'), service.log()).toEqual([]);
      expect(watch.at(-1)![id]!.frames).toBeGreaterThan(before[id]!.frames);
      expect(watch.at(-1)![id]!.reconnects).toBe(before[id]!.reconnects);
    }
    const metrics = (await service.call('GET', '/metrics')).text;
    expect(metrics).toMatch(/^deimv2_stream_reconnects_total\{stream="cam2"\} [1-9]/m);
  }, 90_000);

  it('a camera that hangs (connection open, no frames) is detected as stalled and reconnected', async () => {
    cams[2]!.pause();
    try {
      const stalled = await until('cam3 reconnecting', async () => {
        const s = (await streams()).cam3!;
        return s.state === 'reconnecting' && s;
      }, 30_000, 100);
      // Whichever sees it first: the watchdog (no frame for 5 s) or ffmpeg's own RTSP timeout (5 s), which ends its stream.
      expect(stalled.lastError).toMatch(/no frame for 5\.0 s \(stalled\)|the stream ended|timed out|Could not/);
    } finally {
      cams[2]!.resume();
    }
    const before = (await streams()).cam3!.frames;
    await until('cam3 running again', async () => {
      const s = (await streams()).cam3!;
      return s.state === 'running' && s.frames > before;
    }, 60_000);
  }, 100_000);

  it('takes srt and udp streams too (ffmpeg sending the clip as a camera would)', async () => {
    const senders: ChildProcess[] = [];
    try {
      const srtPort = await freePort();
      const udpPort = await freePort();
      const send = (url: string) => senders.push(spawn('ffmpeg', ['-v', 'error', '-re', '-stream_loop', '-1', '-i', clip, '-map', '0:v:0', '-c', 'copy', '-f', 'mpegts', url], { stdio: 'ignore' }));
      send(`srt://127.0.0.1:${srtPort}?mode=listener`);
      send(`udp://127.0.0.1:${udpPort}?pkt_size=1316`);
      for (const [id, source] of [['srt', `srt://127.0.0.1:${srtPort}`], ['udp', `udp://127.0.0.1:${udpPort}`]]) {
        const r = await service.call('POST', '/v1/streams', { id, source }, auth);
        expect(r.status, r.text).toBe(201);
      }
      await until('srt and udp running with frames', async () => {
        const all = await streams();
        return ['srt', 'udp'].every((id) => all[id]?.state === 'running' && all[id]!.frames >= 3);
      }, 60_000);
    } finally {
      for (const child of senders) child.kill('SIGKILL');
      for (const id of ['srt', 'udp']) await service.call('DELETE', `/v1/streams/${id}`, undefined, auth);
    }
  }, 90_000);

  it('never shows a password of a source URL: not in the API, the metrics or the log', async () => {
    const list = (await service.call('GET', '/v1/streams')).text;
    expect(list).toContain('rtsp://***@127.0.0.1:');
    const metrics = (await service.call('GET', '/metrics')).text;
    expect(metrics).toMatch(/^deimv2_stream_frames_total\{stream="cam1"\} \d+/m);
    for (const name of ['deimv2_stream_dropped_frames_total', 'deimv2_inference_batch_size_bucket', 'deimv2_frame_latency_seconds_bucket', 'process_cpu_seconds_total']) expect(metrics).toContain(name);
    for (const text of [list, metrics, service.log()]) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain('admin:');
    }
  });

  it('a second SIGTERM quits at once, still leaving no ffmpeg behind', async () => {
    const other = await startServe([], {});
    try {
      const added = await other.call('POST', '/v1/streams', { id: 'one', source: cams[0]!.url });
      expect(added.status, added.text).toBe(201);
      await until('the stream running', async () => (await other.call('GET', '/v1/streams/one')).json.state === 'running', 60_000);
      const ffmpegs = childrenNamed(other.child.pid!, 'ffmpeg');
      expect(ffmpegs.length).toBe(1);
      other.child.kill('SIGTERM');
      other.child.kill('SIGTERM');
      const t0 = Date.now();
      const exit = await other.stop();
      expect(Date.now() - t0).toBeLessThan(10_000); // generous: the test machine is shared and loaded
      expect(exit.code === 0 || exit.signal === 'SIGTERM', JSON.stringify(exit)).toBe(true);
      // Killed before the service died; gone once the adopting init has reaped it.
      await until('no ffmpeg left', () => ffmpegs.filter(alive).length === 0, 5000, 100);
    } finally {
      await other.stop('SIGKILL');
    }
  }, 90_000);

  // Ctrl-C is SIGINT to the service (its ffmpeg decoders run in process groups of their own, so the
  // terminal's SIGINT reaches only it): the same stop as SIGTERM. SIGINT runs on a service of its own
  // with one camera; SIGTERM ends this file's service (three cameras), last.
  it.each([
    { signal: 'SIGINT' as const, own: true },
    { signal: 'SIGTERM' as const, own: false },
  ])('$signal: finishes, ends the event streams, exits 0 and leaves no ffmpeg behind', async ({ signal, own }) => {
    const target = own ? await startServe([]) : service;
    try {
      const ids = own ? ['one'] : ['cam1', 'cam2', 'cam3'];
      if (own) {
        const added = await target.call('POST', '/v1/streams', { id: 'one', source: cams[0]!.url });
        expect(added.status, added.text).toBe(201);
      }
      await until('the cameras running', async () => {
        const all = Object.fromEntries(((await target.call('GET', '/v1/streams')).json.streams as Info[]).map((s) => [s.id, s]));
        return ids.every((id) => all[id]?.state === 'running');
      }, 60_000);
      const ffmpegs = childrenNamed(target.child.pid!, 'ffmpeg');
      expect(ffmpegs.length).toBeGreaterThanOrEqual(ids.length);
      const events = await fetch(`${target.url}/v1/streams/${ids.at(-1)}/events`);
      const ended = (async () => {
        const reader = events.body!.getReader();
        while (!(await reader.read()).done);
        return true;
      })();
      const exit = await target.stop(signal);
      expect(exit, target.log()).toEqual({ code: 0, signal: null });
      expect(await ended).toBe(true);
      expect(ffmpegs.filter(alive)).toEqual([]);
      expect(target.log()).toContain(`deimv2 serve: ${signal}: stopping`);
      expect(target.log()).toContain('deimv2 serve: stopped');
      expect(target.log()).not.toContain(PASSWORD);
    } finally {
      if (own) await target.stop('SIGKILL');
    }
  }, 90_000);
});

describe('deimv2 serve refuses what it cannot run safely, before it starts', () => {
  it('a bad config file exits 1 naming the field', async () => {
    const config = path.join(tmp, 'bad.json');
    writeFileSync(config, JSON.stringify({ streams: [{ id: 'a', source: 'rtsp://127.0.0.1:1/x' }, { id: 'b', source: 'gopher://x' }] }));
    const r = await deimv2(['serve', '--config', config, '--port', '0']);
    expect(r.code).toBe(1);
    // The field, after the file it is in.
    expect(r.stderr).toMatch(/deimv2: \S+bad\.json: streams\[1\]\.source: gopher:\/\/x: the "gopher:" protocol is not accepted/);
    writeFileSync(config, JSON.stringify({ streams: [{ id: 'a', source: 'rtsp://127.0.0.1:1/x', zones: ['0,0,10,0,10,10,0,10', '1,1'] }] }));
    expect((await deimv2(['serve', '--config', config, '--port', '0'])).stderr).toMatch(/streams\[0\]\.zones\[1\]: --zone "1,1"/);
  });

  it('a non-loopback address without an API key is refused', async () => {
    const r = await deimv2(['serve', '--host', '0.0.0.0', '--port', '0'], undefined);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--host 0\.0\.0\.0: listening beyond this machine needs an API key/);
  });
});
