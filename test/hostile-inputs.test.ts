/**
 * What an attacker or a new user feeds deimv2 (issue 19 item 4): CMYK JPEGs (PIL's colours, as
 * the official pipeline's convert('RGB')), EXIF orientations 5-8, animated images; folders holding
 * a FIFO, a broken link, a symbolic-link loop, names beginning with '-' or holding a newline;
 * 1,000 concurrent detect() calls mixing good and bad images; two runs writing the same outputs.
 * Image URLs: test/image-urls.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DetectionResult } from '../dist/index.js';
import { expandInputs } from '../dist/cli/inputs.js';
import { decodeBuffer } from '../dist/image/decode.js';
import { planOutputs } from '../dist/output/index.js';
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

describe('two runs writing the same outputs at once', () => {
  it('both finish; each file is whole and is one run\'s; no temporary file is left', async () => {
    const out = path.join(dir, 'same');
    const json = path.join(out, 'r.json');
    const exif = path.join(dir, 'exif6.png');
    writeFileSync(exif, await sharp(EXAMPLE).rotate(-90).png().withMetadata({ orientation: 6 }).toBuffer());
    const [a, b] = await Promise.all([
      deimv2(['detect', EXAMPLE, path.join(FIXTURES, 'cmyk.jpg'), '-b', 'cpu', '-q', '--out', out + '/', '--json', json]),
      deimv2(['detect', exif, path.join(FIXTURES, 'cmyk.jpg'), '-b', 'cpu', '-q', '--out', out + '/', '--json', json]),
    ]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    const doc = JSON.parse(readFileSync(json, 'utf8')) as { results: Array<{ file: string }> };
    expect([[EXAMPLE, path.join(FIXTURES, 'cmyk.jpg')], [exif, path.join(FIXTURES, 'cmyk.jpg')]]).toContainEqual(doc.results.map((r) => r.file));
    expect(readdirSync(out).sort()).toEqual(['cmyk.jpg', 'example.jpg', 'exif6.png', 'r.json']);
    for (const image of ['cmyk.jpg', 'example.jpg', 'exif6.png']) expect((await sharp(path.join(out, image)).metadata()).width).toBeGreaterThan(0);
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

  it('an output that is a link to itself is named a loop (before: "a symbolic link to a missing file")', () => {
    const self = path.join(dir, 'self-out.json');
    symlinkSync('self-out.json', self);
    expect(() => planOutputs({ inputs: [EXAMPLE], outputs: [{ path: self, kind: 'json', flag: '--json' }] })).toThrow(/self-out\.json: it is a symbolic link loop/);
  });

  it.skipIf(process.getuid?.() !== 0)('as nobody: a folder that may not be searched, a file that may not be read', (ctx) => {
    // nobody must reach node, the CLI, the model and the temp folder: a checkout inside a private folder
    // (mktemp -d is 0700) cannot be run as nobody, and the test has nothing to show there.
    const reach = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e',
      `const fs = require('fs'); for (const p of process.argv.slice(1)) fs.accessSync(p, fs.constants.R_OK);`, CLI, MODEL_DIR, path.dirname(dir)], { encoding: 'utf8' });
    if (reach.status !== 0) ctx.skip();
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
      // libvips keeps one error text for all its threads: with many decodes failing at once, a truncated
      // JPEG's own text can be lost ("Unknown error", another input's "not in a known format"; 6 of 300
      // here once); decode then tells it from the bytes (no end marker): always "premature end".
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
