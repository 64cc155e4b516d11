/**
 * Images given as http(s) URLs (issue 19 item 4), against real local http servers: one that
 * trickles a byte a second, one whose body never ends, a redirect loop, a redirect to file:, a
 * 404, a huge Content-Length, credentials in the URL; through the API and deimv2 detect.
 * Before: every image URL was "no such file".
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectionFailure, DetectionResult } from '../dist/index.js';
import { fetchImageUrl } from '../dist/image/fetch.js';
import { deimv2 } from './helpers/cli.js';
import { attoForFile } from './helpers/detector.js';
import { tempDir } from './helpers/images.js';
import { EXAMPLE } from './helpers/paths.js';

const atto = attoForFile();
const dir = tempDir('deimv2-urls-');

describe('image URLs (real local http servers)', () => {
  const jpg = readFileSync(EXAMPLE);
  let base = '';
  const server = http.createServer((req, res) => {
    const url = req.url ?? '';
    if (url.startsWith('/a.jpg')) {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': jpg.length }).end(jpg);
    } else if (url === '/private.jpg') {
      if (req.headers.authorization !== `Basic ${Buffer.from('user:s3cret').toString('base64')}`) res.writeHead(401).end();
      else res.writeHead(200).end(jpg);
    } else if (url === '/trickle.jpg') {
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      let i = 0;
      const timer = setInterval(() => res.write(jpg.subarray(i, ++i)), 1000);
      res.on('close', () => clearInterval(timer));
    } else if (url === '/endless.jpg') {
      res.writeHead(200, { 'content-type': 'image/jpeg' });
      const chunk = Buffer.alloc(1 << 16, 0xff);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
      };
      res.on('drain', pump);
      pump();
    } else if (url.startsWith('/loop')) {
      res.writeHead(302, { location: '/loop' }).end();
    } else if (url === '/to-file.jpg') {
      res.writeHead(302, { location: 'file:///etc/passwd' }).end();
    } else if (url === '/huge.jpg') {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(50 * 2 ** 30) });
      res.write(jpg.subarray(0, 100));
    } else {
      res.writeHead(404).end('not here');
    }
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  it('an image URL is fetched and detected like the file (before: "no such file")', async () => {
    const fromFile = await atto().detect(EXAMPLE);
    const r = await atto().detect(`${base}/a.jpg?size=large`);
    expect(r.file).toBe(`${base}/a.jpg?size=large`);
    expect(r.detections).toEqual(fromFile.detections);
    // Credentials in the URL go in an Authorization header (fetch() refuses them in the URL) and never into messages.
    const auth = `http://user:s3cret@${base.slice('http://'.length)}`;
    expect((await atto().detect(`${auth}/private.jpg`)).detections).toEqual(fromFile.detections);
    const missing = await atto().detect(`${auth}/nope.jpg`).catch((e: Error) => e);
    expect(missing.message).not.toMatch(/s3cret/);
    expect(missing.message).toMatch(/\*\*\*/);
  });

  const refusals: Array<[string, string, RegExp]> = [
    ['/nope.jpg', 'ERR_INPUT_NOT_FOUND', /nope\.jpg: HTTP 404 Not Found/],
    ['/loop.jpg', 'ERR_INPUT_UNREADABLE', /loop\.jpg: more than 20 redirects/],
    ['/to-file.jpg', 'ERR_INPUT_NOT_ALLOWED', /to-file\.jpg: redirected to a URL that is not http\(s\)/],
    ['/huge.jpg', 'ERR_INPUT_TOO_LARGE', /huge\.jpg: its Content-Length of 53687091200 bytes is more than the 67108864 bytes/],
    ['/endless.jpg', 'ERR_INPUT_TOO_LARGE', /endless\.jpg: the body ran past the 67108864 bytes an image URL may send/],
  ];
  for (const [url, code, message] of refusals) {
    it(`${url}: ${code}, at once`, async () => {
      const started = performance.now();
      const e = (await atto().detect(base + url).catch((err: unknown) => err)) as { code: string; message: string };
      expect(e.code).toBe(code);
      expect(e.message).toMatch(message);
      expect(performance.now() - started).toBeLessThan(20_000);
    });
  }

  it('a server that trickles a byte a second is stopped at the time limit (ERR_INPUT_TIMEOUT)', async () => {
    const started = performance.now();
    const e = (await fetchImageUrl(`${base}/trickle.jpg`, { timeoutSeconds: 1.5 }).catch((err: unknown) => err)) as { code: string; message: string };
    expect(e.code).toBe('ERR_INPUT_TIMEOUT');
    expect(e.message).toMatch(/trickle\.jpg: no complete answer within 1\.5 s/);
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('deimv2 detect: URLs among files, each failure named; DEIMV2_URL_TIMEOUT bounds a trickle; ftp:// is refused by name', async () => {
    const json = path.join(dir, 'urls.json');
    const env = { ...process.env, DEIMV2_URL_TIMEOUT: '2' };
    const r = await deimv2Env(['detect', `${base}/a.jpg`, `${base}/trickle.jpg`, `${base}/nope.jpg`, 'ftp://example.com/a.jpg', EXAMPLE, '-b', 'cpu', '-q', '--json', json, '--out', path.join(dir, 'url-out') + '/'], env);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).not.toMatch(/no such file/);
    expect(r.stderr).toMatch(/trickle\.jpg: no complete answer within 2 s .*\[ERR_INPUT_TIMEOUT\]/);
    expect(r.stderr).toMatch(/nope\.jpg: HTTP 404 Not Found \[ERR_INPUT_NOT_FOUND\]/);
    expect(r.stderr).toMatch(/ftp:\/\/example\.com\/a\.jpg: only http:\/\/ and https:\/\/ image URLs are fetched, not ftp: .*\[ERR_INPUT_NOT_ALLOWED\]/);
    const doc = JSON.parse(readFileSync(json, 'utf8')) as { results: Array<DetectionResult | (DetectionFailure & { error: string })> };
    expect(doc.results.map((e) => ('error' in e ? 'error' : 'ok'))).toEqual(['ok', 'error', 'error', 'error', 'ok']);
    expect((doc.results[0] as DetectionResult).detections).toEqual((doc.results[4] as DetectionResult).detections);
    // A bad DEIMV2_URL_TIMEOUT is said once, before the model loads.
    const badEnv = await deimv2Env(['detect', `${base}/a.jpg`, EXAMPLE, '-b', 'cpu'], { DEIMV2_URL_TIMEOUT: 'soon' });
    expect(badEnv.code).toBe(1);
    expect(badEnv.stderr).toMatch(/^deimv2: DEIMV2_URL_TIMEOUT must be a number of seconds above 0 and at most 3600, got "soon" \[ERR_INVALID_ARGUMENT\]\n$/);
    // One URL alone is an image, not a video stream, when its path ends like an image.
    const one = await deimv2Env(['detect', `${base}/a.jpg?x=1`, '-b', 'cpu', '-q', '--json', '-'], env);
    expect(one.code, one.stderr).toBe(0);
    expect(JSON.parse(one.stdout).results[0].detections.length).toBeGreaterThan(0);
  });
});

async function deimv2Env(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const saved = process.env.DEIMV2_URL_TIMEOUT;
  process.env.DEIMV2_URL_TIMEOUT = env.DEIMV2_URL_TIMEOUT;
  try {
    return await deimv2(args);
  } finally {
    if (saved === undefined) delete process.env.DEIMV2_URL_TIMEOUT;
    else process.env.DEIMV2_URL_TIMEOUT = saved;
  }
}
