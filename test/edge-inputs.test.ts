/**
 * Edge cases of everyday inputs: video (Ctrl-C display, odd streams), files that are not regular
 * files, options given through the API, names with control characters, inverted boxes from
 * letterbox, and the command line's own checks.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { evaluateJson } from '../dist/eval/metrics.js';
import { COCO_CLASSES } from '../dist/models/classes.js';
import { toDetections } from '../dist/postprocess/detections.js';
import { printable } from '../dist/output/printable.js';
import { damageLine } from '../dist/video/decoder.js';
import { runVideoDetect } from '../dist/video/run.js';
import { COCO_ANNOTATIONS, EXAMPLE, MODEL_DIR, REFERENCE, ROOT, SHARED } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { deimv2 } from './helpers/cli.js';
import { attoForFile } from './helpers/detector.js';

const CAR = path.join(SHARED, 'videos', 'car-detection.mp4');

const dir = tempDir('deimv2-defects-');
/** The first `frames` frames of the car video. */
function clip(name: string, frames: number): string {
  const file = path.join(dir, name);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', CAR, '-frames:v', String(frames), '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', file]);
  return file;
}

const atto = attoForFile();

describe('video', () => {
  it('a clean video whose name says "corrupt" is not reported as damaged', async () => {
    // ffmpeg's log echoes the name: "Input #0, mov,mp4,... from 'corrupt-clip.mp4':".
    expect(damageLine("Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/tmp/corrupt-clip.mp4':\n", '/tmp/corrupt-clip.mp4')).toBeUndefined();
    expect(damageLine('[h264 @ 0x5581] corrupt decoded frame in stream 0\n', '/tmp/corrupt-clip.mp4')).toMatch(/corrupt decoded frame/);
    const file = clip('corrupt-clip.mp4', 6);
    const summary = await runVideoDetect(atto(), file, { quiet: true, handleSigint: false });
    expect(summary.processed).toBe(6);
    expect(summary.decodeError).toBeUndefined();
  });

  it('after abort(), detectVideo yields no more frames', async () => {
    const file = clip('forty.mp4', 40);
    const controller = new AbortController();
    const run = atto().detectVideo(file, { output: path.join(dir, 'aborted.mp4'), signal: controller.signal });
    let afterAbort = 0;
    let n = 0;
    for await (const _ of run) {
      if (controller.signal.aborted) afterAbort++;
      if (++n === 3) controller.abort();
    }
    expect(afterAbort).toBe(0);
    expect(run.stats.stopped).toBe(true);
    expect(run.stats.processed).toBe(3);
    const frames = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', path.join(dir, 'aborted.mp4')], { encoding: 'utf8' });
    expect(Number(frames.trim())).toBe(3);
  });

  const haveScript = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!haveScript)('Ctrl-C in a terminal: the bar is cleared, then "stopping", then the summary; no bar text after', async () => {
    const file = clip('long.mp4', 200);
    const runner = path.join(dir, 'tty-run.mjs');
    writeFileSync(
      runner,
      `const { Detector } = await import(${JSON.stringify(path.join(ROOT, 'dist/index.js'))});
       const { runVideoDetect } = await import(${JSON.stringify(path.join(ROOT, 'dist/video/index.js'))});
       const d = await Detector.create({ model: 'atto', modelDir: ${JSON.stringify(MODEL_DIR)}, backend: 'cpu' });
       console.log('pid ' + process.pid);
       try { await runVideoDetect(d, ${JSON.stringify(file)}, { out: ${JSON.stringify(path.join(dir, 'tty.mp4'))} }); } finally { await d.close(); }
       console.log('prompt$');`,
    );
    // `script` gives the run a real terminal (stderr is a TTY: the bar is drawn).
    const child = spawn('script', ['-qfec', `${process.execPath} ${runner}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const closed = new Promise((resolve) => child.on('close', resolve));
    for (let i = 0; i < 600 && !/video \[/.test(out) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    const pid = Number(/pid (\d+)/.exec(out)?.[1]);
    process.kill(pid, 'SIGINT');
    await closed;
    const stopping = out.indexOf('deimv2: stopping');
    expect(stopping, out).toBeGreaterThan(out.indexOf('video ['));
    const after = out.slice(stopping);
    expect(after).not.toMatch(/video \[|frames \|/);
    expect(after).toMatch(/long\.mp4: \d+ frames in .* \(stopped\)[\s\S]*prompt\$/);
    // The bar's line was cleared (cursor to column 0, erase line) right before "stopping".
    expect(out.slice(0, stopping)).toMatch(/\x1b\[[0-9;]*[GK][\s\S]{0,40}$/);
  });
});

describe('files that are not regular files', () => {
  for (const dev of ['/dev/zero', '/dev/urandom']) {
    it(`${dev} is named as a character device, not as an empty file`, async () => {
      await expect(atto().detect(dev)).rejects.toMatchObject({ code: 'ERR_INPUT_UNREADABLE', message: expect.stringContaining('not a regular file') });
      const r = await deimv2(['detect', dev, '-b', 'cpu']);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`${dev}: not a regular file (a character device)`);
      expect(r.stderr).not.toMatch(/empty file|atto on cpu/);
    });
  }
});

describe('options given through the API', () => {
  it('NaN and Infinity thresholds are named as such, not as null', async () => {
    await expect(Detector.create({ model: 'atto', modelDir: MODEL_DIR, threshold: NaN })).rejects.toThrow(/threshold must be a number from 0 to 1, got NaN$/);
    await expect(Detector.create({ model: 'atto', modelDir: MODEL_DIR, threshold: Infinity })).rejects.toThrow(/got Infinity$/);
    await expect(atto().detect(EXAMPLE, { threshold: -Infinity })).rejects.toThrow(/got -Infinity$/);
    await expect(atto().detect(EXAMPLE, { maxDetections: NaN })).rejects.toThrow(/maxDetections must be a positive integer, got NaN$/);
  });

  it("classes: 'person' (one string) means the class person, not the letters p, e, r...", async () => {
    const result = await atto().detect(EXAMPLE, { classes: 'person' as unknown as string[], threshold: 0.2 });
    expect(result.detections.length).toBeGreaterThan(3);
    expect(result.detections.every((d) => d.label === 'person')).toBe(true);
    const some = await atto().detect(EXAMPLE, { classes: 'person,donut' as unknown as string[], threshold: 0.2 });
    expect(new Set(some.detections.map((d) => d.label)).has('person')).toBe(true);
    await expect(atto().detect(EXAMPLE, { classes: 5 as unknown as string[] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('classes must be a list of class names') });
  });
});

describe('names with control characters', () => {
  it('are printed escaped, one name on one line', async () => {
    expect(printable('a\nb\x1b[31m\u202e.jpg')).toBe('a\\nb\\u001b[31m\\u202e.jpg');
    const odd = path.join(dir, 'line\nbreak\x1b[2J.jpg');
    copyFileSync(EXAMPLE, odd);
    const r = await deimv2(['detect', odd, path.join(dir, 'missing\r.jpg'), '-b', 'cpu']);
    expect(r.stderr).toContain('line\\nbreak\\u001b[2J.jpg (500x375)');
    expect(r.stderr).toContain('missing\\r.jpg: no such file');
    expect(r.stderr).not.toMatch(/[\r\x1b]/);
  });
});

describe('inverted boxes (letterbox)', () => {
  it('detect never returns a box with x2 < x1 or y2 < y1: such a raw box covers no area and is left out', () => {
    // What the Atto export returned for 000000022192.jpg with letterbox: x2 < x1.
    const raw = {
      batch: 1,
      perImage: 3,
      labels: new Int32Array([0, 0, 2]),
      boxes: new Float32Array([460.4, 290.7, 408.6, 401.7, 10, 20, 30, 40, 50, 60, 55, 50]),
      scores: new Float32Array([0.05, 0.9, 0.3]),
    };
    const transform = { mode: 'letterbox' as const, imageWidth: 640, imageHeight: 480, frameWidth: 640, frameHeight: 640, scale: 1, padX: 0, padY: 80 };
    const detections = toDetections(raw, 0, transform, { threshold: 0, maxDetections: 300, classes: COCO_CLASSES });
    expect(detections.map((d) => d.box)).toEqual([[10, 0, 30, 0]].map((b) => b.map((v) => expect.closeTo(v, 4))));
    for (const d of detections) expect(d.box[2] >= d.box[0] && d.box[3] >= d.box[1]).toBe(true);
  });

  it('eval scores a results file with inverted boxes exactly as pycocotools (it refused the whole file)', () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/eval/inverted-boxes.json', import.meta.url), 'utf8')) as { inverted: number; stats: number[] };
    const results = JSON.parse(readFileSync(path.join(REFERENCE, 'atto_coco50_official.json'), 'utf8')) as Array<{ bbox: number[] }>;
    // Same rule as scripts/make-inverted-box-fixture.py.
    results.forEach((r, i) => {
      let [x, y, w, h] = r.bbox as [number, number, number, number];
      if (i % 7 === 0) {
        r.bbox = [x + w, y, -w, h];
        x = x + w;
        w = -w;
      }
      if (i % 11 === 0) r.bbox = [x, y + h, w, -h];
    });
    expect(results.filter((r) => r.bbox[2]! < 0 || r.bbox[3]! < 0).length).toBe(fixture.inverted);
    const gt = JSON.parse(readFileSync(COCO_ANNOTATIONS, 'utf8'));
    const evaluation = evaluateJson(gt, 'instances_val2017.json', results, 'inverted.json');
    expect(evaluation.result.stats).toEqual(fixture.stats); // bit for bit
  });
});

describe('the command line', () => {
  it('prepare on a file over 2 GB says it is too large, not that it is missing', async () => {
    const big = path.join(dir, 'big.onnx');
    writeFileSync(big, '');
    truncateSync(big, 2 ** 31 + 4096); // sparse: no disk used
    const r = await deimv2(['prepare', '--model', big, '--out', path.join(dir, 'prepared.onnx')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/big\.onnx: the file is over 2 GiB.*\[ERR_INPUT_TOO_LARGE\]/);
  });

  it('an unknown command fails, with --help too; the hint names the command', async () => {
    for (const args of [['frobnicate', '--help'], ['frobnicate'], ['help', 'frobnicate']]) {
      const r = await deimv2(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/unknown command 'frobnicate' \(the commands are detect, info, eval, compare, prepare, build/);
      expect(r.stdout).not.toMatch(/Usage:/);
    }
    const r = await deimv2(['detect']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('(run deimv2 detect --help for its options)');
    expect(r.stderr).not.toContain('<command>');
  });
});
