/**
 * Which protocols ffmpeg may use for each kind of video source (issue 9, section 3): a local file
 * only `file`, a URL only its own scheme's protocols, never ffmpeg's pseudo-protocols. Checked on
 * the options ffmpeg gets, and end to end with real servers on 127.0.0.1: HLS over HTTP (good
 * playlist, a playlist and a redirect that point at a local file), and rtmp, tcp, srt and udp
 * streams served by ffmpeg (the whitelists must not break real streams; a silent UDP source ends).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { detectVideo } from '../dist/video/index.js';
import { ffmpegInputOptions, protocolWhitelist, STREAM_PROTOCOLS } from '../dist/video/source.js';
import { MODEL_DIR } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

/** ffmpeg's protocols that read local data or wrap other sources; none may be reachable from a URL. */
const LOCAL_OR_PSEUDO = ['file', 'concat', 'concatf', 'subfile', 'pipe', 'data', 'async', 'cache', 'unix', 'fd', 'hls', 'ftp', 'gopher', 'sftp'];

function whitelistOf(args: string[]): string[] {
  const at = args.indexOf('-protocol_whitelist');
  expect(at, args.join(' ')).toBeGreaterThanOrEqual(0);
  return args[at + 1]!.split(',');
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs detection on a live source to its end (or `stopAfterMs`), returning the run's counts. */
async function readAll(source: string, options: { stopAfterMs?: number; openTimeoutMs?: number } = {}) {
  const controller = new AbortController();
  const timer = options.stopAfterMs ? setTimeout(() => controller.abort(), options.stopAfterMs) : undefined;
  const run = detectVideo(detector, source, { signal: controller.signal, openTimeoutMs: options.openTimeoutMs ?? 10_000 });
  let frames = 0;
  try {
    for await (const _ of run) frames++;
  } finally {
    clearTimeout(timer);
  }
  return { frames, decoded: run.stats.decoded };
}

async function errorOf(source: string): Promise<string> {
  try {
    await readAll(source);
    return 'no error';
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
}

let detector: Detector;
let dir: string;
let server: http.Server;
let base: string;
/** A real MPEG-TS segment of 10 frames, also used as the "local file" a playlist must not reach. */
let segment0: string;

beforeAll(async () => {
  detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR });
  dir = tempDir('deimv2-protocols-');
  const site = path.join(dir, 'site');
  mkdirSync(site);
  // Two one-second segments of 10 frames each (keyframe every 5 frames).
  execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10:duration=2', '-c:v', 'libx264', '-preset', 'ultrafast', '-g', '5',
    '-pix_fmt', 'yuv420p', '-f', 'hls', '-hls_time', '1', '-hls_list_size', '0', '-hls_segment_filename', path.join(site, 'seg%d.ts'), path.join(site, 'good.m3u8')]);
  segment0 = path.join(site, 'seg0.ts');
  const playlist = (uris: string[]) => ['#EXTM3U', '#EXT-X-VERSION:3', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:0', ...uris.flatMap((u) => ['#EXTINF:1.0,', u]), '#EXT-X-ENDLIST', ''].join('\n');
  writeFileSync(path.join(site, 'local.m3u8'), playlist([`file://${segment0}`]));
  writeFileSync(path.join(site, 'mixed.m3u8'), playlist(['seg1.ts', `file://${segment0}`]));
  server = http.createServer((req, res) => {
    const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname);
    if (name === 'redirect.ts') {
      res.writeHead(302, { location: `file://${segment0}` }).end();
      return;
    }
    const file = path.join(site, name);
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': name.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp2t' });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  server?.close();
  await detector?.close();
});

describe('protocol whitelists', () => {
  it('every accepted URL scheme gets a whitelist of its own protocols, without local or pseudo-protocols', () => {
    for (const scheme of STREAM_PROTOCOLS) {
      const url = `${scheme}://127.0.0.1:9000/x`;
      const list = whitelistOf(ffmpegInputOptions(url));
      expect(list).toContain(scheme === 'https' ? 'https' : scheme);
      for (const p of LOCAL_OR_PSEUDO) expect(list, `${scheme}: ${list.join(',')}`).not.toContain(p);
      expect(whitelistOf(protocolWhitelist(url))).toEqual(list);
    }
    expect(whitelistOf(ffmpegInputOptions('clip.mp4'))).toEqual(['file']);
    expect(whitelistOf(ffmpegInputOptions('frames/%04d.png'))).toEqual(['file']);
    expect(ffmpegInputOptions('/dev/video0')).toEqual(['-f', 'v4l2']);
    // UDP/RTP never end by themselves: a silence as long as the open timeout ends the run.
    expect(ffmpegInputOptions('udp://127.0.0.1:9000', 3000).join(' ')).toContain('-timeout 3000000');
  });
});

describe('HLS over HTTP', () => {
  it('reads a playlist whose segments are on the server', async () => {
    const { decoded } = await readAll(`${base}/good.m3u8`);
    expect(decoded).toBe(20);
  });

  it('refuses a playlist segment that points at a local file', async () => {
    expect(await errorOf(`${base}/local.m3u8`)).toMatch(/^ERR_VIDEO: Could not decode http:\/\/127\.0\.0\.1:\d+\/local\.m3u8: .*file:\/\/.*seg0\.ts/);
    // Mixed: the server's segment plays, the local one is skipped (10 frames, not 20).
    const { decoded } = await readAll(`${base}/mixed.m3u8`);
    expect(decoded).toBe(10);
  });

  it('refuses a redirect to a local file', async () => {
    expect(await errorOf(`${base}/redirect.ts`)).toMatch(/^ERR_VIDEO: Could not (decode|open) http:\/\/127\.0\.0\.1:\d+\/redirect\.ts/);
  });
});

describe('streams served by ffmpeg', () => {
  /** ffmpeg sending 2 s of test pattern (10 FPS, MPEG-2 in MPEG-TS, or FLV for rtmp) to `url`. */
  function sender(url: string, format: 'mpegts' | 'flv', extra: string[] = []): ChildProcess {
    return spawn('ffmpeg', ['-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=10:duration=2', '-c:v', format === 'flv' ? 'flv1' : 'mpeg2video', '-g', '5', '-f', format, ...extra, url], { stdio: 'ignore' });
  }

  /** Waits until a TCP port listens (read from the kernel's table: connecting would use up a -listen 1 server). */
  async function listening(port: number): Promise<void> {
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
    for (let i = 0; i < 200; i++) {
      if (readFileSync('/proc/net/tcp', 'utf8').split('\n').some((l) => l.includes(hex) && / 0A /.test(l))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('rtmp and tcp (ffmpeg -listen 1)', async () => {
    for (const [scheme, format] of [['rtmp', 'flv'], ['tcp', 'mpegts']] as const) {
      const port = await freePort();
      const url = scheme === 'rtmp' ? `rtmp://127.0.0.1:${port}/live/s` : `tcp://127.0.0.1:${port}`;
      const proc = sender(url, format, ['-listen', '1']);
      try {
        await listening(port);
        const { decoded } = await readAll(url);
        expect(decoded, scheme).toBeGreaterThanOrEqual(15);
      } finally {
        proc.kill('SIGKILL');
      }
    }
  });

  it('srt (listener on the sending side)', async () => {
    const port = await freePort();
    const proc = sender(`srt://127.0.0.1:${port}?mode=listener`, 'mpegts');
    try {
      await new Promise((r) => setTimeout(r, 500));
      const { decoded } = await readAll(`srt://127.0.0.1:${port}`);
      expect(decoded).toBeGreaterThanOrEqual(15);
    } finally {
      proc.kill('SIGKILL');
    }
  });

  it('udp: reads the stream, and a source gone silent ends the run after the open timeout', async () => {
    const port = await freePort();
    const url = `udp://127.0.0.1:${port}`;
    const t0 = Date.now();
    const run = readAll(url, { openTimeoutMs: 3000 });
    await new Promise((r) => setTimeout(r, 300));
    const proc = sender(`${url}?pkt_size=1316`, 'mpegts');
    try {
      const { decoded } = await run;
      expect(decoded).toBeGreaterThanOrEqual(15);
      // 2 s of stream, then 3 s of silence: ended by itself well before a Ctrl-C would be needed.
      expect(Date.now() - t0).toBeLessThan(11_000);
    } finally {
      proc.kill('SIGKILL');
    }
  });
});
