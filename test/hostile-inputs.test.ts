/**
 * What an attacker or a new user feeds deimv2 (issue 19 item 4): CMYK JPEGs (PIL's colours, as
 * the official pipeline's convert('RGB')), EXIF orientations 5-8, animated images; folders holding
 * a FIFO, a broken link, a symbolic-link loop, names beginning with '-' or holding a newline;
 * 1,000 concurrent detect() calls mixing good and bad images; and image URLs served by real local
 * http servers that trickle, never end, redirect forever, 404 or announce a huge body.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DetectionFailure, DetectionResult } from '../dist/index.js';
import { expandInputs } from '../dist/cli/inputs.js';
import { decodeBuffer } from '../dist/image/decode.js';
import { fetchImageUrl } from '../dist/image/fetch.js';
import { deimv2 } from './helpers/cli.js';
import { attoForFile } from './helpers/detector.js';
import { tempDir } from './helpers/images.js';
import { CLI, EXAMPLE, MODEL_DIR, ROOT } from './helpers/paths.js';

const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'hostile');
const atto = attoForFile();
const dir = tempDir('deimv2-hostile-');

async function pixelsOf(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

describe('colour spaces and orientation, against Pillow', () => {
  for (const name of ['cmyk.jpg', 'cmyk-exif6.jpg']) {
    it(`${name} decodes to the pixels of PIL's convert('RGB') (before: lcms's CMYK profile, 99% of values different)`, async () => {
      const ours = await decodeBuffer(readFileSync(path.join(FIXTURES, name)), name);
      const pil = await pixelsOf(path.join(FIXTURES, `${name}.pil.png`));
      expect([ours.width, ours.height]).toEqual([pil.width, pil.height]);
      expect(Buffer.from(ours.data).equals(pil.data)).toBe(true);
      const fromFile = await atto().detect(path.join(FIXTURES, name));
      const fromPil = await atto().detect({ data: pil.data, width: pil.width, height: pil.height, channels: 3 });
      expect(fromFile.detections).toEqual(fromPil.detections);
    });
  }

  it('EXIF orientations 5 to 8: boxes in the displayed (upright) image, as ImageOps.exif_transpose', async () => {
    const upright = await pixelsOf(EXAMPLE);
    const expected = await atto().detect({ ...upright, channels: 3 });
    // The stored pixels for each orientation are the upright image turned back (lossless PNG;
    // sharp mirrors before it rotates, whatever the call order: 5 is a transpose, 7 a transverse).
    const stored: Record<number, (s: sharp.Sharp) => sharp.Sharp> = {
      5: (s) => s.flop().rotate(-90),
      6: (s) => s.rotate(-90),
      7: (s) => s.flop().rotate(90),
      8: (s) => s.rotate(90),
    };
    for (const orientation of [5, 6, 7, 8]) {
      const raw = sharp(upright.data, { raw: { width: upright.width, height: upright.height, channels: 3 } });
      const turned = await stored[orientation]!(raw).raw().toBuffer({ resolveWithObject: true });
      const png = await sharp(turned.data, { raw: { width: turned.info.width, height: turned.info.height, channels: 3 } })
        .png()
        .withMetadata({ orientation })
        .toBuffer();
      expect((await sharp(png).metadata()).orientation).toBe(orientation);
      const r = await atto().detect(png);
      expect([orientation, r.width, r.height]).toEqual([orientation, upright.width, upright.height]);
      expect(r.detections).toEqual(expected.detections);
    }
  });

  it('animated GIF and WebP: the first frame is detected', async () => {
    const { data, width, height } = await pixelsOf(EXAMPLE);
    const black = Buffer.alloc(data.length);
    const frames = (list: Buffer[]) => sharp(Buffer.concat(list), { raw: { width, height: height * list.length, channels: 3, pageHeight: height } as sharp.Raw });
    const gifPhotoFirst = await frames([data, black]).gif().toBuffer();
    const webpBlackFirst = await frames([black, data]).webp({ lossless: true }).toBuffer();
    expect((await sharp(gifPhotoFirst, { pages: -1 }).metadata()).pages).toBe(2);
    expect((await sharp(webpBlackFirst, { pages: -1 }).metadata()).pages).toBe(2);
    const gif = await atto().detect(gifPhotoFirst);
    expect([gif.width, gif.height]).toEqual([width, height]);
    expect(gif.detections.some((d) => d.label === 'person')).toBe(true);
    expect((await atto().detect(webpBlackFirst)).detections).toEqual([]);
  });
});

describe('a folder of awkward entries', () => {
  const folder = path.join(dir, 'folder');
  beforeAll(() => {
    mkdirSync(path.join(folder, 'sub'), { recursive: true });
    for (const name of ['a.jpg', '-n.jpg', 'new\nline.jpg', 'sub/b.jpg']) copyFileSync(EXAMPLE, path.join(folder, name));
    execFileSync('mkfifo', [path.join(folder, 'fifo.jpg')]);
    symlinkSync('missing-target.jpg', path.join(folder, 'broken.jpg'));
    symlinkSync('..', path.join(folder, 'sub', 'loop')); // back to the folder itself
    symlinkSync('/', path.join(folder, 'sub', 'up')); // to a folder that holds it: the whole file system
  });

  for (const how of ['-r', 'a ** glob']) {
    it(`${how}: each image once; the FIFO and the broken link are named failures; the loops are said, not followed (before: FIFO and link silently left out, images walked again through the loop, and a link to / walked the whole file system: 6,197 images)`, async () => {
      const { files, unreadable, notes, problems } = how === '-r' ? await expandInputs([folder], { recursive: true }) : await expandInputs([`${folder}/**/*.jpg`]);
      expect(files.map((f) => path.relative(folder, f))).toEqual(['-n.jpg', 'a.jpg', 'broken.jpg', 'fifo.jpg', 'new\nline.jpg', 'sub/b.jpg']);
      expect(unreadable.get(path.join(folder, 'fifo.jpg'))?.message).toMatch(/fifo\.jpg: not a regular file \(a FIFO/);
      expect(unreadable.get(path.join(folder, 'broken.jpg'))?.message).toMatch(/broken\.jpg: a symbolic link to nothing/);
      expect([...unreadable.keys()]).toHaveLength(2);
      expect(notes).toHaveLength(2);
      expect(notes).toEqual(expect.arrayContaining([expect.stringMatching(/sub\/loop: symbolic link loop/), expect.stringMatching(/sub\/up: symbolic link loop \(it leads back to \/,/)]));
      expect(problems).toEqual([]);
    });
  }

  it('deimv2 detect goes on past each bad one, naming it, and never hangs on the FIFO', async () => {
    const json = path.join(dir, 'folder.json');
    const r = await deimv2(['detect', folder, '-r', '-b', 'cpu', '-q', '--json', json]);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/fifo\.jpg: not a regular file/);
    expect(r.stderr).toMatch(/broken\.jpg: a symbolic link to nothing/);
    expect(r.stderr).toMatch(/loop: symbolic link loop/);
    const doc = JSON.parse(readFileSync(json, 'utf8')) as { results: Array<{ file: string; error?: string; detections?: unknown[] }> };
    const byName = Object.fromEntries(doc.results.map((e) => [path.relative(folder, e.file), e]));
    expect(Object.keys(byName).sort()).toEqual(['-n.jpg', 'a.jpg', 'broken.jpg', 'fifo.jpg', 'new\nline.jpg', 'sub/b.jpg']);
    for (const good of ['-n.jpg', 'a.jpg', 'new\nline.jpg', 'sub/b.jpg']) expect(byName[good]!.detections!.length, good).toBeGreaterThan(0);
    expect(byName['fifo.jpg']!.error).toMatch(/FIFO/);
  });
});

describe('a file named like an option', () => {
  it("-n.jpg: the unknown-option error says how to give it (after --); after -- it runs", async () => {
    const folder = path.join(dir, 'dash');
    mkdirSync(folder);
    copyFileSync(EXAMPLE, path.join(folder, '-n.jpg'));
    const refused = await deimv2(['detect', '-n.jpg', '-b', 'cpu'], folder);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/-n\.jpg is also a file: to give it as an input, put it after -- \(deimv2 detect -- -n\.jpg\) or write \.\/-n\.jpg/);
    const r = await deimv2(['detect', '-b', 'cpu', '-q', '--json', '-', '--', '-n.jpg'], folder);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).results[0].file).toBe('-n.jpg');
  });
});

describe('paths that are not "missing"', () => {
  it('a link to itself and a file behind a folder that may not be searched say so (before: "no such file")', async () => {
    const self = path.join(dir, 'self.jpg');
    symlinkSync('self.jpg', self);
    const { unreadable } = await expandInputs([self]);
    expect(unreadable.get(self)?.message).toMatch(/self\.jpg: a symbolic link loop/);
    const e = (await atto().detect(self).catch((err: unknown) => err)) as { code: string; message: string };
    expect([e.code, e.message]).toEqual(['ERR_INPUT_UNREADABLE', `${self}: a symbolic link loop (the link leads back to itself)`]);
  });

  it.skipIf(process.getuid?.() !== 0)('as nobody: a folder that may not be searched, a file that may not be read', () => {
    const locked = path.join(dir, 'locked');
    mkdirSync(locked);
    copyFileSync(EXAMPLE, path.join(locked, 'a.jpg'));
    chmodSync(locked, 0o000);
    const unreadableFile = path.join(dir, 'mode000.jpg');
    copyFileSync(EXAMPLE, unreadableFile);
    chmodSync(unreadableFile, 0o000);
    chmodSync(dir, 0o755);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'detect', path.join(locked, 'a.jpg'), unreadableFile, EXAMPLE, '-b', 'cpu', '-q'], {
      encoding: 'utf8',
      env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR },
    });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/locked\/a\.jpg: permission denied .*\[ERR_INPUT_UNREADABLE\]/);
    expect(r.stderr).toMatch(/mode000\.jpg: permission denied .*\[ERR_INPUT_UNREADABLE\]/);
    expect(r.stderr).toMatch(/1 image\(s\), 5 detection\(s\), 2 failed/);
    expect(r.stderr).not.toMatch(/no such file/);
  });
});

describe('1,000 concurrent detect() calls, good and bad mixed', () => {
  it('each good one equals the sequential result, each bad one has its own error, no unhandled rejection', async () => {
    const d = atto();
    const truncated = readFileSync(EXAMPLE).subarray(0, 60_000);
    const garbage = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff));
    const truncFile = path.join(dir, 'truncated.jpg');
    const garbageFile = path.join(dir, 'garbage.jpg');
    writeFileSync(truncFile, truncated);
    writeFileSync(garbageFile, garbage);
    const good = [EXAMPLE, path.join(FIXTURES, 'cmyk.jpg'), path.join(FIXTURES, 'cmyk-exif6.jpg')];
    const bad: Array<[string | Buffer, RegExp]> = [
      [truncFile, /truncated\.jpg: cannot decode image: .*premature end/i],
      [garbageFile, /garbage\.jpg: not an image/],
      [path.join(dir, 'missing.jpg'), /missing\.jpg: no such file/],
      [truncated, /buffer of 60000 bytes.*premature end/i],
      [garbage, /buffer of 4096 bytes.*not an image/],
      [Buffer.alloc(0), /empty input/],
    ];
    const sequential = new Map<string, unknown>();
    for (const g of good) sequential.set(g, (await d.detect(g)).detections);
    let unhandled = 0;
    const onUnhandled = () => unhandled++;
    process.on('unhandledRejection', onUnhandled);
    const inputs = Array.from({ length: 1000 }, (_, i) => (i % 8 === 0 ? good[(i / 8) % good.length]! : bad[i % bad.length]![0]));
    const rssBefore = process.memoryUsage().rss;
    const settled = await Promise.allSettled(inputs.map((x) => d.detect(x)));
    process.off('unhandledRejection', onUnhandled);
    settled.forEach((s, i) => {
      const input = inputs[i]!;
      const expected = bad.find(([b]) => b === input);
      if (expected) {
        expect(s.status, String(i)).toBe('rejected');
        expect((s as PromiseRejectedResult).reason.message).toMatch(expected[1]);
        expect((s as PromiseRejectedResult).reason.code).toMatch(/^ERR_INPUT_/);
      } else {
        expect(s.status, String(i)).toBe('fulfilled');
        expect((s as PromiseFulfilledResult<DetectionResult>).value.detections).toEqual(sequential.get(input as string));
      }
    });
    expect(unhandled).toBe(0);
    // Bounded: the decode budget holds; 1,000 pending calls do not hold 1,000 decoded images.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(600 * 2 ** 20);
  });
});

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
