/**
 * The live page of `deimv2 serve` (GET /) in a real browser: Debian's chromium driven by
 * puppeteer-core (headless, --no-sandbox: the tests run as root; nothing is downloaded), against the
 * real CLI (Atto on the CPU) serving a file stream of the car clip (played four times, with a
 * counting line the tracks cross) with an API key. The page must show the MJPEG frames, the state,
 * FPS and counts as they change, add a stream with a line and a zone through its form (401 without
 * the key; the service's 400 and markup in sources and errors shown as text, never as markup) and
 * remove it; its screenshot must not be blank; nothing (chromium, ffmpeg) may be left running.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/images.js';
import { ATTO, CLI, MODEL_DIR, ROOT, SHARED } from './helpers/paths.js';
import { freePort } from './helpers/redis.js';

const CAR = path.join(SHARED, 'videos', 'car-detection.mp4');
const KEY = 'page-test-key';
const LINE = '0,200,768,200:mid';
const ZONE = '100,100,400,100,400,400,100,400:box';

let dir: string;
let service: ChildProcess;
let serviceLog = '';
let base: string;
let browser: Browser;
let page: Page;
const descendants = new Set<number>();

/** Every process below pid now (ffmpeg decoders of the service; chromium's renderers). */
function processTree(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) if (pp === p) { out.push(child); walk(child); }
  };
  walk(pid);
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}\n--- service log ---\n${serviceLog.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function clickRemove(id: string) {
  return page.evaluate((id) => [...document.querySelectorAll<HTMLElement>('#grid .stream')].find((e) => e.dataset.id === id)!.querySelector<HTMLButtonElement>('button.remove')!.click(), id);
}

/** The text of a card's parts, as a person reads it on the page. */
function card(id: string) {
  return page.evaluate((id) => {
    const c = [...document.querySelectorAll<HTMLElement>('#grid .stream')].find((e) => e.dataset.id === id);
    if (!c) return undefined;
    const img = c.querySelector('img')!;
    const text = (sel: string) => c.querySelector(sel)?.textContent ?? '';
    return {
      state: text('.state'), fps: text('.value.fps'), frames: Number(text('.value.frames')), dropped: text('.value.dropped'),
      counts: [...c.querySelectorAll('.counts tr')].map((tr) => tr.textContent), source: text('.source'), error: text('.error'),
      imgWidth: img.naturalWidth, imgSrc: img.getAttribute('src'),
    };
  }, id);
}

beforeAll(async () => {
  dir = tempDir('deimv2-serve-page-');
  // The clip four times over (1,508 frames): long enough to still run while the page is checked.
  const clip = path.join(dir, 'cars.mp4');
  execFileSync('ffmpeg', ['-v', 'error', '-stream_loop', '3', '-i', CAR, '-an', '-c', 'copy', clip]);
  const config = path.join(dir, 'streams.json');
  writeFileSync(config, JSON.stringify({ streams: [{ id: 'cars', source: clip, track: true, lines: [LINE] }] }));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  service = spawn(process.execPath, [CLI, 'serve', '--config', config, '--allow-dir', dir, '--model', ATTO, '--backend', 'cpu', '--port', String(port), '--api-key', KEY], {
    cwd: ROOT, env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  service.stdout!.on('data', (d: Buffer) => { serviceLog += d.toString(); });
  service.stderr!.on('data', (d: Buffer) => { serviceLog += d.toString(); });
  await until('GET /health 200', async () => (await fetch(`${base}/health`).catch(() => undefined))?.status === 200, 60_000);
  browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  page.on('pageerror', (e) => { serviceLog += `\n[page error] ${String(e)}`; });
  await page.goto(`${base}/`);
}, 90_000);

afterAll(async () => {
  const chromium = browser?.process()?.pid;
  if (chromium) for (const p of [chromium, ...processTree(chromium)]) descendants.add(p);
  if (service?.pid) for (const p of [service.pid, ...processTree(service.pid)]) descendants.add(p);
  await browser?.close();
  if (service && service.exitCode === null && service.signalCode === null) {
    const exited = new Promise((r) => service.once('exit', r));
    service.kill('SIGTERM');
    await exited;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('deimv2 serve: the live page in chromium', () => {
  it('shows the stream\'s MJPEG frames, its state, FPS and counts as they change', async () => {
    const first = await until('the MJPEG view to show frames and the state running', async () => {
      const c = await card('cars');
      return c && c.imgWidth > 0 && c.state === 'running' ? c : undefined;
    });
    expect(first.imgSrc).toBe('/v1/streams/cars/mjpeg');
    expect(first.imgWidth).toBe(768);
    expect(first.source).toContain('cars.mp4');
    // The service's ffmpeg decoder runs below it now; it must be gone at the end.
    const tree = processTree(service.pid!);
    expect(tree.length).toBeGreaterThan(0);
    for (const p of tree) descendants.add(p);
    expect(first.counts).toEqual([expect.stringMatching(/^linemidin \d+out \d+$/)]);
    // Frames go up, and the line's counts change as the tracks cross it.
    const later = await until('the frame count to grow', async () => {
      const c = await card('cars');
      return c && c.frames > first.frames ? c : undefined;
    });
    expect(later.frames).toBeGreaterThan(first.frames);
    expect(Number(later.fps)).toBeGreaterThan(0);
    const crossed = await until('a crossing of the line on the page', async () => {
      const c = await card('cars');
      return c && c.counts[0] !== first.counts[0] ? c : undefined;
    }, 45_000);
    // What the page shows is what the API says (the API can only be ahead: the page polls).
    const api = (await (await fetch(`${base}/v1/streams/cars`)).json()) as { frames: number; counts: { lines: { name: string; totalIn: number; totalOut: number }[] } };
    const [, shownIn, shownOut] = /in (\d+)out (\d+)/.exec(crossed.counts[0]!)!.map(Number);
    expect(api.counts.lines[0]!.name).toBe('mid');
    expect(api.counts.lines[0]!.totalIn + api.counts.lines[0]!.totalOut).toBeGreaterThanOrEqual(shownIn! + shownOut!);
    expect(shownIn! + shownOut!).toBeGreaterThan(0);
    expect(api.frames).toBeGreaterThanOrEqual(crossed.frames);
  }, 90_000);

  it('adds a stream through the form (with the key; 401 said without it) and removes it', async () => {
    const add = async (id: string, source: string, lines = '', zones = '') => {
      // The fields filled in one step (typing key by key costs seconds on a busy machine), then the button clicked.
      await page.evaluate((id, source, lines, zones) => {
        const f = document.querySelector<HTMLFormElement>('#add')!;
        f.reset();
        document.querySelector('#message')!.textContent = '';
        for (const [name, value] of [['id', id], ['source', source], ['lines', lines], ['zones', zones]]) (f.elements.namedItem(name!) as HTMLInputElement).value = value!;
      }, id, source, lines, zones);
      await page.click('#add button[type=submit]');
      return until('the form\'s answer', () => page.$eval('#message', (m) => m.textContent || undefined));
    };
    const second = path.join(dir, 'cars.mp4');
    expect(await add('second', second)).toMatch(/^could not add second: 401/);
    expect(await card('second')).toBeUndefined();

    await page.locator('#key').fill(KEY);
    // A bad config: the service's 400 names the field; the page shows it as text, not as markup.
    const evil = '<img src=x onerror="window.__injected=1">';
    const refused = await add(evil, second);
    expect(refused).toMatch(/^could not add <img src=x onerror="window.__injected=1">: 400/);
    expect(await page.evaluate(() => [document.querySelectorAll('#message *').length, (window as { __injected?: number }).__injected ?? 'none'])).toEqual([0, 'none']);

    // Markup in what the API answers (the source, its last error) is shown as text too.
    const markup = 'rtsp://127.0.0.1:9/<b>cam</b>';
    expect(await add('markup', markup)).toBe('added markup');
    const odd = await until('the unreachable camera\'s card', async () => {
      const c = await card('markup');
      return c && c.error ? c : undefined;
    });
    expect(odd.source).toBe(markup);
    expect(odd.state).toMatch(/^(starting|reconnecting)$/);
    expect(await page.evaluate(() => document.querySelectorAll('#grid b:not(.value)').length)).toBe(0);
    await clickRemove('markup');
    await until('the remove to be answered', async () => (await page.$eval('#message', (m) => m.textContent)) === 'removed markup' || undefined);
    await until('the unreachable camera to leave the page', async () => (await card('markup')) === undefined || undefined);

    expect(await add('second', second, LINE, ZONE)).toBe('added second');
    const shown = await until('the added stream to show frames', async () => {
      const c = await card('second');
      return c && c.imgWidth > 0 && c.frames > 0 ? c : undefined;
    });
    expect(shown.counts).toEqual([expect.stringMatching(/^linemidin \d+out \d+$/), expect.stringMatching(/^zoneboxtracks \d+max \d+$/)]);
    const listed = (await (await fetch(`${base}/v1/streams`)).json()) as { streams: { id: string }[] };
    expect(listed.streams.map((s) => s.id).sort()).toEqual(['cars', 'second']);

    await clickRemove('second');
    await until('the remove to be answered', async () => (await page.$eval('#message', (m) => m.textContent)) === 'removed second' || undefined);
    await until('the removed stream to leave the page', async () => (await card('second')) === undefined || undefined);
    expect((await fetch(`${base}/v1/streams/second`)).status).toBe(404);
  }, 90_000);

  it('nine streams: the grid stays usable, and streams added and removed through the API come and go on the open page', async () => {
    const auth = { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' };
    const ids = Array.from({ length: 8 }, (_, i) => `cam${i + 1}`);
    // Cameras nobody serves (cheap: each stream's decoder fails and waits); the page must show them all.
    for (const id of ids) {
      const r = await fetch(`${base}/v1/streams`, { method: 'POST', headers: auth, body: JSON.stringify({ id, source: `rtsp://127.0.0.1:9/${id}` }) });
      expect(r.status, await r.text()).toBe(201);
    }
    await until('nine cards on the page', async () => (await page.$$eval('#grid .stream', (e) => e.length)) === 9 || undefined);
    const layout = await page.evaluate(() => ({
      cards: [...document.querySelectorAll<HTMLElement>('#grid .stream')].map((c) => {
        const r = c.getBoundingClientRect();
        return { id: c.dataset.id!, left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, mode: c.querySelector('img')!.dataset.mode };
      }),
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
    }));
    // No horizontal scrolling; every card wide enough to read; no two cards overlap; several columns at 1280 px.
    expect(layout.scrollWidth).toBeLessThanOrEqual(layout.innerWidth);
    for (const c of layout.cards) {
      expect(c.width).toBeGreaterThanOrEqual(300);
      expect(c.left).toBeGreaterThanOrEqual(0);
      expect(c.right).toBeLessThanOrEqual(layout.innerWidth);
    }
    for (const [i, a] of layout.cards.entries()) for (const b of layout.cards.slice(i + 1)) {
      expect(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top, `${a.id} overlaps ${b.id}`).toBe(true);
    }
    expect(new Set(layout.cards.map((c) => Math.round(c.top))).size).toBeLessThanOrEqual(3);
    // The first four have live MJPEG views, the others stills (a browser holds 6 connections to a host).
    expect(layout.cards.map((c) => c.mode)).toEqual(['mjpeg', 'mjpeg', 'mjpeg', 'mjpeg', 'still', 'still', 'still', 'still', 'still']);
    // The page keeps polling with four MJPEG connections open: the file stream's frames go on growing there.
    const before = (await card('cars'))!.frames;
    await until('the page to show new frames of cars', async () => ((await card('cars'))?.frames ?? 0) > before || undefined, 30_000);
    expect(await page.$eval('#health', (h) => h.textContent)).toBe('connected');
    expect((await card('cam8'))!.state).toMatch(/^(starting|reconnecting)$/);
    // Removed through the API: their cards leave; a still moves up to a live view once a view is free.
    for (const id of ids.slice(0, 4)) expect((await fetch(`${base}/v1/streams/${id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${KEY}` } })).status).toBe(204);
    await until('five cards left', async () => (await page.$$eval('#grid .stream', (e) => e.length)) === 5 || undefined);
    const modes = await page.$$eval('#grid .stream', (cs) => cs.map((c) => [(c as HTMLElement).dataset.id, c.querySelector('img')!.dataset.mode, c.querySelector('img')!.getAttribute('src')]));
    expect(modes.map((m) => m[0])).toEqual(['cars', 'cam5', 'cam6', 'cam7', 'cam8']);
    expect(modes.slice(0, 4).map((m) => m[1])).toEqual(['mjpeg', 'mjpeg', 'mjpeg', 'mjpeg']);
    expect(modes[3]![2]).toBe('/v1/streams/cam7/mjpeg');
    expect(modes[4]![1]).toBe('still');
    for (const id of ids.slice(4)) expect((await fetch(`${base}/v1/streams/${id}`, { method: 'DELETE', headers: { Authorization: `Bearer ${KEY}` } })).status).toBe(204);
    await until('only cars left', async () => (await page.$$eval('#grid .stream', (e) => e.map((c) => (c as HTMLElement).dataset.id).join())) === 'cars' || undefined);
  }, 120_000);

  it('a screenshot of the page is not blank', async () => {
    await until('frames in the view', async () => ((await card('cars'))?.imgWidth ?? 0) > 0 || undefined);
    const png = Buffer.from(await page.screenshot({ type: 'png' }));
    writeFileSync(path.join(dir, 'page.png'), png);
    const stats = await sharp(png).stats();
    const meta = await sharp(png).metadata();
    expect([meta.width, meta.height]).toEqual([1280, 800]);
    // Not one colour: the video frames and the text make the channels vary widely.
    for (const ch of stats.channels.slice(0, 3)) expect(ch.stdev).toBeGreaterThan(20);
    // The view's region holds a real frame (a picture, not a flat box).
    const box = await page.$eval('#grid .stream img', (img) => { const r = img.getBoundingClientRect(); return { left: Math.round(r.left), top: Math.round(r.top), width: Math.round(r.width), height: Math.round(r.height) }; });
    const view = await sharp(png).extract(box).stats();
    expect(view.channels[0]!.stdev).toBeGreaterThan(10);
  }, 60_000);

  it('closes with nothing left running: chromium, the service and its ffmpeg children', async () => {
    const chromium = browser.process()!.pid!;
    for (const p of [chromium, ...processTree(chromium), service.pid!, ...processTree(service.pid!)]) descendants.add(p);
    await browser.close();
    const exited = new Promise<[number | null, string | null]>((r) => service.once('exit', (code, signal) => r([code, signal])));
    service.kill('SIGTERM');
    expect(await exited).toEqual([0, null]);
    await until('every process to be gone', async () => [...descendants].every((p) => !alive(p)) || undefined, 10_000);
  }, 60_000);
});
