/**
 * Output safety (issue 9, sections 1 and 2): no output ever replaces an input, the ground truth or
 * another output; unwritable targets are reported before any model loads; every file is written
 * under a temporary name and renamed when complete; interrupted runs keep what they finished.
 * Every clash case checks the inputs' sha256 before and after.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { checkOutputs, planOutputs } from '../dist/output/plan.js';
import { AtomicFile, writeFileAtomic } from '../dist/output/atomic.js';
import { tinyDisk } from './helpers/disk.js';
import { CLI, COCO_ANNOTATIONS, COCO_IMAGES, EXAMPLE, MODEL_DIR, SHARED } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { deimv2 } from './helpers/cli.js';

const CAR = path.join(SHARED, 'videos', 'car-detection.mp4');

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const sums = (files: string[]) => Object.fromEntries(files.map((f) => [f, sha(f)]));
/** Every file under `dir` (names only, hidden ones included), sorted. */
const listing = (dir: string) => readdirSync(dir, { recursive: true }).map(String).sort();
/** The model never loaded: the line that names it is missing. */
const MODEL_LINE = /atto on cpu/;

/** A short clip (8 frames of the car video), made once. */
function shortClip(dir: string): string {
  const clip = path.join(dir, 'clip.mp4');
  if (!existsSync(clip)) execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', CAR, '-frames:v', '8', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', clip]);
  return clip;
}

describe('the output plan', () => {
  const dir = tempDir('deimv2-plan-');
  const img = path.join(dir, 'img.jpg');
  copyFileSync(EXAMPLE, img);

  it('sees through symbolic links to folders and hard links', () => {
    mkdirSync(path.join(dir, 'real'));
    copyFileSync(EXAMPLE, path.join(dir, 'real', 'x.jpg'));
    symlinkSync(path.join(dir, 'real'), path.join(dir, 'link'));
    linkSync(img, path.join(dir, 'hard.jpg'));
    expect(() => checkOutputs({ inputs: [path.join(dir, 'real', 'x.jpg')], outputs: [{ path: path.join(dir, 'link', 'x.jpg'), kind: 'image', flag: '--out' }] })).toThrow(
      expect.objectContaining({ code: 'ERR_OUTPUT_CLASH', message: expect.stringMatching(/--out .*link\/x\.jpg would overwrite the input .*real\/x\.jpg \(through a symbolic link/) }),
    );
    expect(() => checkOutputs({ inputs: [img], outputs: [{ path: path.join(dir, 'hard.jpg'), kind: 'image' }] })).toThrow(
      expect.objectContaining({ code: 'ERR_OUTPUT_CLASH', message: expect.stringContaining('a hard link to the same file') }),
    );
    // A missing output under a symlinked folder resolves through it too.
    const [planned] = checkOutputs({ inputs: [], outputs: [{ path: path.join(dir, 'link', 'new.json'), kind: 'json' }] });
    expect(planned!.resolved).toBe(path.join(dir, 'real', 'new.json'));
  });

  it('refuses two outputs on one file, a folder as a file, and a file as a folder', () => {
    const json = path.join(dir, 'r.json');
    expect(() => checkOutputs({ inputs: [], outputs: [{ path: json, kind: 'json', flag: '--json' }, { path: `${dir}/./r.json`, kind: 'image', flag: '--out' }] })).toThrow(
      expect.objectContaining({ code: 'ERR_OUTPUT_CLASH', message: expect.stringMatching(/--out .*r\.json and --json .*r\.json are the same file/) }),
    );
    expect(() => checkOutputs({ inputs: [], outputs: [{ path: dir, kind: 'json', flag: '--json' }] })).toThrow(expect.objectContaining({ code: 'ERR_OUTPUT_WRITE', message: expect.stringContaining('it is a folder') }));
    expect(() => checkOutputs({ inputs: [], outputs: [{ path: img, kind: 'folder', flag: '--out' }] })).toThrow(expect.objectContaining({ code: 'ERR_OUTPUT_WRITE', message: expect.stringContaining('not a folder') }));
    expect(() => checkOutputs({ inputs: [], outputs: [{ path: path.join(img, 'sub', 'x.json'), kind: 'json' }] })).toThrow(
      expect.objectContaining({ code: 'ERR_OUTPUT_WRITE', message: expect.stringMatching(/img\.jpg is not a folder/) }),
    );
  });

  it('creates the folders of every kind of output, and only after every check passed', () => {
    const a = path.join(dir, 'deep', 'a', 'r.json');
    const b = path.join(dir, 'deep', 'b');
    expect(() => planOutputs({ inputs: [img], outputs: [{ path: a, kind: 'json' }, { path: b, kind: 'folder' }, { path: img, kind: 'image' }] })).toThrow(expect.objectContaining({ code: 'ERR_OUTPUT_CLASH' }));
    expect(existsSync(path.join(dir, 'deep'))).toBe(false);
    planOutputs({ inputs: [img], outputs: [{ path: a, kind: 'json' }, { path: b, kind: 'folder' }, { path: path.join(dir, 'deep', 'c', 'v.mp4'), kind: 'video' }] });
    expect(['a', 'b', 'c'].map((d) => statSync(path.join(dir, 'deep', d)).isDirectory())).toEqual([true, true, true]);
    expect(existsSync(a)).toBe(false);
  });

  it('passes over stdout, URLs and missing inputs', () => {
    expect(checkOutputs({ inputs: ['rtsp://camera/stream', path.join(dir, 'missing.jpg')], outputs: [{ path: '-', kind: 'json' }, { path: path.join(dir, 'missing.jpg.json'), kind: 'json' }] })).toHaveLength(1);
  });
});

describe('atomic writes', () => {
  const dir = tempDir('deimv2-atomic-');

  it('writes under a temporary name and renames; a failure leaves the old file and no temporary file', async () => {
    const file = path.join(dir, 'a.json');
    writeFileSync(file, 'old');
    await writeFileAtomic(file, 'new');
    expect(readFileSync(file, 'utf8')).toBe('new');
    // A target whose folder vanished: the write fails, nothing is left.
    await expect(writeFileAtomic(path.join(dir, 'gone', 'b.json'), 'x')).rejects.toThrow(/ENOENT/);
    const f = new AtomicFile(file);
    writeFileSync(f.path, 'partial');
    expect(readFileSync(file, 'utf8')).toBe('new');
    f.discard();
    expect(listing(dir)).toEqual(['a.json']);
  });

  it('follows a symbolic link (the link stays) and writes devices in place', async () => {
    const real = path.join(dir, 'real.json');
    writeFileSync(real, 'old');
    symlinkSync(real, path.join(dir, 'link.json'));
    await writeFileAtomic(path.join(dir, 'link.json'), 'new');
    expect(readFileSync(real, 'utf8')).toBe('new');
    expect(statSync(path.join(dir, 'link.json')).ino).toBe(statSync(real).ino);
    await writeFileAtomic('/dev/null', 'nothing');
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
  });
});

describe('deimv2 detect refuses every clash before anything runs (checksums unchanged)', () => {
  const dir = tempDir('deimv2-clash-');
  const clip = shortClip(dir);
  const img = path.join(dir, 'img.jpg');
  copyFileSync(EXAMPLE, img);
  for (const d of ['a', 'b', 'c']) mkdirSync(path.join(dir, d));
  copyFileSync(EXAMPLE, path.join(dir, 'a', 'x.jpg'));
  copyFileSync(path.join(COCO_IMAGES, '000000006818.jpg'), path.join(dir, 'b', 'x.jpg'));
  copyFileSync(path.join(COCO_IMAGES, '000000017627.jpg'), path.join(dir, 'c', 'x.jpg'));
  copyFileSync(path.join(COCO_IMAGES, '000000025560.jpg'), path.join(dir, 'c', 'x.heic')); // the name is what matters
  copyFileSync(path.join(COCO_IMAGES, '000000037777.jpg'), path.join(dir, 'c', 'x-1.jpg'));
  symlinkSync(path.join(dir, 'b'), path.join(dir, 'blink'));
  linkSync(img, path.join(dir, 'hard.jpg'));
  copyFileSync(path.join(MODEL_DIR, 'deimv2_hgnetv2_atto_coco.onnx'), path.join(dir, 'atto.onnx'));
  copyFileSync(path.join(MODEL_DIR, 'deimv2_hgnetv2_atto_coco.onnx'), path.join(dir, 'deimv2_hgnetv2_atto_coco.onnx'));
  const inputs = ['clip.mp4', 'img.jpg', 'a/x.jpg', 'b/x.jpg', 'c/x.jpg', 'c/x.heic', 'c/x-1.jpg', 'atto.onnx', 'deimv2_hgnetv2_atto_coco.onnx'].map((f) => path.join(dir, f));
  const before = sums(inputs);

  const cases: Array<[string, string[], RegExp]> = [
    ['a video over itself (--out)', ['clip.mp4', '--out', 'clip.mp4'], /--out clip\.mp4 would overwrite the input clip\.mp4/],
    ['a video over itself (--json)', ['clip.mp4', '--json', 'clip.mp4'], /--json clip\.mp4 would overwrite the input clip\.mp4/],
    ['JSON over the photo', ['img.jpg', '--json', 'img.jpg'], /--json img\.jpg would overwrite the input img\.jpg/],
    ['an annotated copy over another input of the run', ['a/x.jpg', 'b/x.jpg', '--out', 'b'], /--out b\/x\.jpg would overwrite the input b\/x\.jpg/],
    ['a format change landing on another input (x.heic -> x.jpg)', ['c/x.heic', 'c/x.jpg', '--out', 'c'], /--out c\/x\.jpg would overwrite the input c\/x\.jpg/],
    ['a name-collision suffix landing on an input (x -> x-1.jpg)', ['a/x.jpg', 'c/x.jpg', 'c/x-1.jpg', '--out', 'c'], /would overwrite the input c\/x(-1)?\.jpg/],
    ['--out through a symlinked folder', ['b/x.jpg', '--out', 'blink/'], /--out blink\/x\.jpg would overwrite the input b\/x\.jpg \(through a symbolic link/],
    ['--out onto a hard link of the input', ['img.jpg', '--out', 'hard.jpg'], /--out hard\.jpg would overwrite the input img\.jpg \(a hard link/],
    ['JSON over the model file', ['img.jpg', '--model', 'atto.onnx', '--json', 'atto.onnx'], /--json atto\.onnx would overwrite the input .*atto\.onnx/],
    ['JSON over the model file a variant name resolves to', ['img.jpg', '--model-dir', '.', '--json', 'deimv2_hgnetv2_atto_coco.onnx'], /--json deimv2_hgnetv2_atto_coco\.onnx would overwrite the input .*deimv2_hgnetv2_atto_coco\.onnx/],
    ['--json and --out on one file', ['img.jpg', '--out', 'o.png', '--json', 'o.png'], /--json o\.png and --out o\.png are the same file/],
  ];
  for (const [what, args, message] of cases) {
    it(what, async () => {
      const r = await deimv2(['detect', ...args, '-b', 'cpu'], dir);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/nothing was written \[ERR_OUTPUT_CLASH\]/);
      expect(r.stderr).not.toMatch(MODEL_LINE);
      expect(sums(inputs)).toEqual(before);
      expect(existsSync(path.join(dir, 'o.png'))).toBe(false);
    });
  }

  it('eval never writes over the annotations (--write-results), and --results with --images is refused', async () => {
    const gt = path.join(dir, 'gt.json');
    copyFileSync(COCO_ANNOTATIONS, gt);
    const gtSum = sha(gt);
    let r = await deimv2(['eval', '-b', 'cpu', '-i', COCO_IMAGES, '-a', 'gt.json', '--write-results', './gt.json', '-q'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--write-results \.\/gt\.json would overwrite the input gt\.json.*\[ERR_OUTPUT_CLASH\]/);
    r = await deimv2(['eval', '-b', 'cpu', '-i', COCO_IMAGES, '-a', gt, '--results', gt, '-q'], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--results names a results file to score.*use --write-results <file>.*\[ERR_INVALID_ARGUMENT\]/);
    expect(sha(gt)).toBe(gtSum);
  });
});

describe('deimv2 detect reports unwritable targets and bad outputs before the model loads', () => {
  const dir = tempDir('deimv2-unwritable-');
  const clip = shortClip(dir);
  const file = path.join(dir, 'a-file');
  writeFileSync(file, 'x');
  const cases: Array<[string, string[], RegExp]> = [
    ['a folder given to --json', [EXAMPLE, '--json', dir], /Cannot write --json .*: it is a folder; give a file name.*\[ERR_OUTPUT_WRITE\]/],
    ['a --json under a file', [EXAMPLE, '--json', path.join(file, 'r.json')], /Cannot write --json .*a-file\/r\.json: .*a-file is not a folder/],
    ['an --out folder under a file', [EXAMPLE, path.join(COCO_IMAGES, '000000006818.jpg'), '--out', path.join(file, 'out')], /Cannot write --out .*a-file\/out: .*a-file is not a folder/],
    ['a video --out under a file', [clip, '--out', path.join(file, 'v.mp4')], /Cannot write --out .*a-file\/v\.mp4/],
    ['--out x.jpg for a video', [clip, '--out', path.join(dir, 'x.jpg')], /--out .*x\.jpg: the annotated copy of a video is an H\.264 MP4; give a file name ending in \.mp4 \[ERR_INVALID_ARGUMENT\]/],
    ['several inputs with --out one.jpg', [EXAMPLE, path.join(COCO_IMAGES, '000000006818.jpg'), '--out', path.join(dir, 'one.jpg')], /--out .*one\.jpg names one file, but there are 2 input images: give a folder.*\[ERR_INVALID_ARGUMENT\]/],
    ['an --out file with an extension no encoder writes', [EXAMPLE, '--out', path.join(dir, 'x.bmp')], /--out .*x\.bmp: unknown image extension "\.bmp"/],
    ['a missing input file', [path.join(dir, 'nope.jpg')], /nope\.jpg: no such file/],
    ['a missing video file', [path.join(dir, 'nope.mp4')], /Video not found: .*nope\.mp4/],
  ];
  for (const [what, args, message] of cases) {
    it(what, async () => {
      const r = await deimv2(['detect', ...args, '-b', 'cpu']);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(MODEL_LINE);
      expect(listing(dir)).toEqual(['a-file', 'clip.mp4']);
    });
  }

  it('a missing input among good ones is reported first, the rest run, and it is a failure in the JSON', async () => {
    const json = path.join(dir, 'sub', 'r.json');
    const r = await deimv2(['detect', path.join(dir, 'nope.jpg'), EXAMPLE, '--json', json, '-b', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stderr.indexOf('nope.jpg: no such file')).toBeLessThan(r.stderr.search(MODEL_LINE));
    const doc = JSON.parse(readFileSync(json, 'utf8'));
    expect(doc.results.map((e: { error?: string }) => e.error ?? 'ok')).toEqual([expect.stringContaining('no such file'), 'ok']);
  });
});

describe('folders are created for every kind of output', () => {
  it('images, JSON, an annotated video and its JSON lines', async () => {
    const dir = tempDir('deimv2-mkdir-');
    const clip = shortClip(dir);
    let r = await deimv2(['detect', EXAMPLE, '--out', path.join(dir, 'i', 'j', 'a.png'), '--json', path.join(dir, 'k', 'r.json'), '-b', 'cpu', '-q']);
    expect(r.code, r.stderr).toBe(0);
    r = await deimv2(['detect', clip, '--out', path.join(dir, 'v', 'w', 'a.mp4'), '--json', path.join(dir, 'x', 'a.jsonl'), '-b', 'cpu', '-q']);
    expect(r.code, r.stderr).toBe(0);
    expect(listing(dir).filter((f) => /\.(png|json|mp4|jsonl)$/.test(f))).toEqual(['clip.mp4', 'i/j/a.png', 'k/r.json', 'v/w/a.mp4', 'x/a.jsonl']);
    expect(readFileSync(path.join(dir, 'x', 'a.jsonl'), 'utf8').trim().split('\n')).toHaveLength(8);
    expect(listing(dir).some((f) => f.includes('.partial'))).toBe(false);
  });
});

describe('a failed video run leaves no file behind', () => {
  it('not a video: no MP4, no JSONL, no temporary file', async () => {
    const dir = tempDir('deimv2-videofail-');
    writeFileSync(path.join(dir, 'fake.mp4'), 'this is not a video\n'.repeat(100));
    writeFileSync(path.join(dir, 'old.jsonl'), 'kept\n');
    const r = await deimv2(['detect', path.join(dir, 'fake.mp4'), '--out', path.join(dir, 'o.mp4'), '--json', path.join(dir, 'old.jsonl'), '-b', 'cpu', '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_VIDEO/);
    expect(listing(dir)).toEqual(['fake.mp4', 'old.jsonl']);
    expect(readFileSync(path.join(dir, 'old.jsonl'), 'utf8')).toBe('kept\n');
  });
});

const canMount = (() => {
  const d = tinyDisk('64k');
  return d !== undefined;
})();

describe.skipIf(!canMount)('a full disk (a tiny tmpfs; needs root)', () => {
  const inputs = tempDir('deimv2-full-in-');
  const names = ['000000006818.jpg', '000000017627.jpg', '000000025560.jpg', '000000037777.jpg', '000000041888.jpg', '000000058636.jpg'];
  for (const n of names) copyFileSync(path.join(COCO_IMAGES, n), path.join(inputs, n));

  it('leaves no empty or truncated image, lists each ENOSPC, and counts only the images written', async () => {
    const disk = tinyDisk('160k')!;
    const json = path.join(tempDir(), 'r.json');
    const r = await deimv2(['detect', inputs, '--out', path.join(disk, 'out'), '--json', json, '-b', 'cpu', '-q']);
    expect(r.code).toBe(1);
    const doc = JSON.parse(readFileSync(json, 'utf8'));
    const failed = doc.results.filter((e: { error?: string }) => e.error);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((e: { error: string }) => /ENOSPC/.test(e.error))).toBe(true);
    expect(r.stderr).toMatch(new RegExp(`${failed.length} of 6 file\\(s\\) failed`));
    const written = listing(path.join(disk, 'out'));
    expect(written).toEqual(doc.results.filter((e: { error?: string }) => !e.error).map((e: { file: string }) => path.basename(e.file)));
    for (const f of written) expect((await sharp(path.join(disk, 'out', f)).raw().toBuffer()).length).toBeGreaterThan(0);
    // The summary counts the detections of the images that were written, not of the failed ones.
    const detections = doc.results.reduce((n: number, e: { detections?: unknown[] }) => n + (e.detections?.length ?? 0), 0);
    expect(r.stderr).toMatch(new RegExp(`deimv2: ${written.length} image\\(s\\), ${detections} detection\\(s\\), ${failed.length} failed`));
  });

  it('when --json itself cannot be written: the old JSON stays, and the per-file errors are still listed', async () => {
    const disk = tinyDisk('200k')!;
    const json = path.join(disk, 'r.json');
    writeFileSync(json, '{"old": true}\n');
    mkdirSync(path.join(disk, 'out'));
    // Fill the disk: every write from now on meets ENOSPC.
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(disk, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
    } catch {
      // dd stops at ENOSPC.
    }
    const r = await deimv2(['detect', inputs, '--out', path.join(disk, 'out'), '--json', json, '-b', 'cpu', '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/file\(s\) failed:\n(  .*ENOSPC.*\n)+/);
    expect(r.stderr).toMatch(/cannot write JSON to .*r\.json: ENOSPC/);
    expect(readFileSync(json, 'utf8')).toBe('{"old": true}\n');
    expect(listing(disk).some((f) => f.includes('.partial'))).toBe(false);
    for (const f of listing(path.join(disk, 'out'))) expect(statSync(path.join(disk, 'out', f)).size).toBeGreaterThan(0);
  });

  it('a video that does not fit: no MP4 under its name, no temporary file', async () => {
    const disk = tinyDisk('16k')!;
    const clip = shortClip(tempDir());
    const r = await deimv2(['detect', clip, '--out', path.join(disk, 'v.mp4'), '-b', 'cpu', '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_OUTPUT_WRITE/);
    expect(listing(disk)).toEqual([]);
  });
});

describe('Ctrl-C on an image folder with --json', () => {
  // 150 inputs (links to the COCO images) on one thread: a few seconds of work.
  const dir = tempDir('deimv2-sigint-');
  const input = path.join(dir, 'in');
  mkdirSync(input);
  const coco = readdirSync(COCO_IMAGES).sort();
  for (let i = 0; i < 150; i++) symlinkSync(path.join(COCO_IMAGES, coco[i % coco.length]!), path.join(input, `${String(i).padStart(3, '0')}.jpg`));

  async function interrupted(name: string, twice: boolean, signal: 'SIGINT' | 'SIGTERM' = 'SIGINT') {
    const out = path.join(dir, `${name}-out`);
    const json = path.join(dir, `${name}.json`);
    const child = spawn(process.execPath, [CLI, 'detect', input, '--out', out, '--json', json, '-b', 'cpu', '--threads', '1', '--batch', twice ? '8' : '1'], {
      env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const closed = new Promise<number | string | null>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal)));
    const done = () => (existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.jpg')).length : 0);
    for (let i = 0; i < 600 && done() < 3 && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    child.kill(signal);
    if (twice) {
      for (let i = 0; i < 200 && !stderr.includes('stopping') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 20));
      child.kill(signal);
    }
    const code = await closed;
    return { code, stderr, doc: JSON.parse(readFileSync(json, 'utf8')), written: listing(out) };
  }

  it('the first Ctrl-C finishes the images in flight and writes every finished one to the JSON', async () => {
    const { code, stderr, doc, written } = await interrupted('once', false);
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/stopping: finishing the images in flight/);
    expect(doc.stopped).toBe(true);
    expect(doc.results.length).toBeGreaterThanOrEqual(3);
    expect(doc.results.length).toBeLessThan(150);
    // Every finished image is in the JSON and has its annotated copy, and nothing else is there.
    expect(written).toEqual(doc.results.map((e: { file: string }) => path.basename(e.file)));
    expect(doc.results.every((e: { detections?: unknown[] }) => Array.isArray(e.detections))).toBe(true);
    expect(stderr).toMatch(new RegExp(`deimv2: ${doc.results.length} image\\(s\\), .*stopped after ${doc.results.length} of 150`));
  });

  it('a second Ctrl-C quits at once, still leaving valid JSON and no temporary file', async () => {
    const { code, stderr, doc, written } = await interrupted('twice', true);
    // It dies of the signal, as an interrupted program does (the shell shows status 130).
    expect(code, stderr).toBe('SIGINT');
    expect(stderr).toMatch(/quit: \d+ of 150 file\(s\) finished/);
    expect(doc.stopped).toBe(true);
    expect(doc.results.length).toBeLessThan(150);
    expect(written.some((f) => f.includes('.partial'))).toBe(false);
    for (const f of written) expect(statSync(path.join(dir, 'twice-out', f)).size).toBeGreaterThan(0);
  });

  // SIGTERM (docker stop, systemd, kill) is a stop request like Ctrl-C. Before, it killed the run
  // at once: no JSON, and the temporary files of the images in flight were left behind.
  it('SIGTERM once: the same as a first Ctrl-C (exit status 143)', async () => {
    const { code, stderr, doc, written } = await interrupted('term-once', false, 'SIGTERM');
    expect(code, stderr).toBe(143);
    expect(stderr).toMatch(/SIGTERM: stopping: finishing the images in flight \(SIGTERM again to quit now\)/);
    expect(doc.stopped).toBe(true);
    expect(doc.results.length).toBeLessThan(150);
    expect(written).toEqual(doc.results.map((e: { file: string }) => path.basename(e.file)));
  });

  it('SIGTERM twice: dies of SIGTERM, leaving valid JSON and no temporary file', async () => {
    const { code, stderr, doc, written } = await interrupted('term-twice', true, 'SIGTERM');
    expect(code, stderr).toBe('SIGTERM');
    expect(doc.stopped).toBe(true);
    expect(written.some((f) => f.includes('.partial'))).toBe(false);
  });
});

/** `deimv2 detect CAR --out DIR/v.mp4 --json DIR/v.jsonl`, returned once a few JSON lines are written (under their temporary name). */
async function videoRunUnderWay(prefix: string) {
  const dir = tempDir(prefix);
  const out = path.join(dir, 'v.mp4');
  const jsonl = path.join(dir, 'v.jsonl');
  const child = spawn(process.execPath, [CLI, 'detect', CAR, '--out', out, '--json', jsonl, '-b', 'cpu'], { env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR }, stdio: ['ignore', 'ignore', 'pipe'] });
  const run = { dir, out, jsonl, child, stderr: '', closed: new Promise<number | string | null>((resolve) => child.on('close', (code, signal) => resolve(code ?? signal))) };
  child.stderr.on('data', (d) => (run.stderr += d));
  const partial = () => readdirSync(dir).find((f) => f.startsWith('.v.jsonl.'));
  for (let i = 0; i < 600 && child.exitCode === null; i++) {
    const p = partial();
    if (p && readFileSync(path.join(dir, p), 'utf8').split('\n').length > 4) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  return run;
}

describe('SIGTERM on a video', () => {
  it('finishes the MP4 and the JSON lines of the frames done, and exits 143 like an image run (before: two temporary files and no output; then exit 0)', async () => {
    const run = await videoRunUnderWay('deimv2-sigterm-video-');
    const { dir, out, jsonl, child, closed } = run;
    child.kill('SIGTERM');
    expect(await closed, run.stderr).toBe(143);
    expect(run.stderr).toMatch(/SIGTERM: stopping \(finishing the output; SIGTERM again to quit now\)/);
    expect(readdirSync(dir).sort()).toEqual(['v.jsonl', 'v.mp4']);
    const lines = readFileSync(jsonl, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(3);
    const frames = execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-count_frames', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', out], { encoding: 'utf8' }).trim();
    expect(Number(frames)).toBe(lines.length);
  });
});

describe('Ctrl-C once on a video', () => {
  it('finishes the MP4 and the JSON lines and exits 130 like an image run (before: exit 0)', async () => {
    const run = await videoRunUnderWay('deimv2-sigint1-video-');
    run.child.kill('SIGINT');
    expect(await run.closed, run.stderr).toBe(130);
    expect(readdirSync(run.dir).sort()).toEqual(['v.jsonl', 'v.mp4']);
  });
});

describe('Ctrl-C twice on a video', () => {
  it('quits at once; the JSON lines are whole and the MP4 is finished and moved into place after', async () => {
    const run = await videoRunUnderWay('deimv2-sigint-video-');
    const { dir, out, jsonl, child, closed } = run;
    child.kill('SIGINT');
    for (let i = 0; i < 200 && !run.stderr.includes('stopping'); i++) await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGINT');
    expect(await closed, run.stderr).toBe('SIGINT');
    const lines = readFileSync(jsonl, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(Object.keys(JSON.parse(line))).toEqual(['frame', 'pts', 'detections']);
    // ffmpeg finishes the file after the process is gone; a detached shell renames it.
    for (let i = 0; i < 200 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 50));
    const frames = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', out], { encoding: 'utf8' });
    expect(Number(frames.trim())).toBeGreaterThanOrEqual(lines.length);
    expect(listing(dir)).toEqual(['v.jsonl', 'v.mp4']);
  });
});

// Root can write anything: the check runs as nobody, where setpriv exists and nobody can read the CLI.
const canDropRoot =
  process.getuid?.() === 0 &&
  spawnSyncOk('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(CLI)}); require('fs').accessSync(${JSON.stringify(EXAMPLE)})`]);
function spawnSyncOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!canDropRoot)('read-only targets (run as nobody)', () => {
  it('a read-only folder or file is reported before the model loads', async () => {
    const dir = tempDir('deimv2-readonly-');
    chmodSync(dir, 0o755); // nobody may look, not write
    writeFileSync(path.join(dir, 'old.json'), 'old');
    const asNobody = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'detect', EXAMPLE, '-b', 'cpu', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        child.on('close', (code) => resolve({ code, stderr }));
      });
    for (const [args, message] of [
      [['--json', path.join(dir, 'new.json')], /Cannot write --json .*new\.json: the folder .* is read-only/],
      [['--json', path.join(dir, 'old.json')], /Cannot write --json .*old\.json: the file is read-only/],
      [['--out', path.join(dir, 'sub') + '/'], /Cannot write --out .*sub\/: the folder .* is read-only/],
    ] as const) {
      const r = await asNobody([...args]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/\[ERR_OUTPUT_WRITE\]/);
      expect(r.stderr).not.toMatch(MODEL_LINE);
    }
    expect(listing(dir)).toEqual(['old.json']);
  });
});
