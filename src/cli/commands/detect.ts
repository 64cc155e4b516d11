/** `deimv2 detect <files|dirs|globs...>`: detect, annotate, write JSON, summarise. */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { drawDetections } from '../../annotate/draw.js';
import { outputPathFor, writeAnnotatedImage } from '../../annotate/write.js';
import { Detector, type DetectorResult } from '../../detector.js';
import { DeimError, errorMessage } from '../../errors.js';
import type { DetectionFailure } from '../../postprocess/types.js';
import { isImageSequence, isVideoInput, runVideoDetect, summaryLine } from '../../video/index.js';
import { checkLocalSource } from '../../video/source.js';
import { TrackSession } from '../../track/session.js';
import { checkOutputPath } from '../../track/io.js';
import { expandInputs, isImagePath } from '../inputs.js';
import { addDetectorOptions, detectorOptionsFrom, type DetectorCliOptions } from '../options.js';
import { createProgress } from '../progress.js';
import { addTrackOptions, trackOptionsFromCli } from './track.js';

interface DetectCliOptions extends DetectorCliOptions {
  out?: string;
  json?: string;
  quiet?: boolean;
  recursive?: boolean;
  track?: boolean;
  mot?: string;
}

type Entry = DetectorResult | DetectionFailure;

export function register(program: Command): void {
  const command = addDetectorOptions(
    program
      .command('detect')
      .description('detect objects in images (files, folders, globs) or in a video (file, image sequence, stream URL, webcam)')
      .argument('<inputs...>', 'image files, folders or glob patterns; or one video file, image-sequence pattern (frames/%04d.png), rtsp/http URL or /dev/videoN'),
  )
    .option('-o, --out <file|dir>', 'write annotated images: a file for one input, else a folder (format from the extension)')
    .option('--json <file>', 'write detections as JSON ("-" for stdout); for video, JSON lines, one per frame')
    .option('-r, --recursive', 'search folders recursively')
    .option('-q, --quiet', 'no progress bar and no per-image lines')
    .option('--track', 'video: track objects (ByteTrack); detections get a trackId (the tracker sees every detection above 0.1; --threshold filters what is drawn and written)')
    .option('--mot <file>', 'video with --track: tracks in MOTChallenge format');
  addTrackOptions(command).action(async (inputs: string[], options: DetectCliOptions) => {
    process.exitCode = await detectCommand(inputs, options);
  });
}

export async function detectCommand(inputs: string[], options: DetectCliOptions): Promise<number> {
  const detectorOptions = detectorOptionsFrom(options);
  // An image-sequence pattern (frames/%04d.png) ends like an image but is a video (unless a file has that very name).
  const sequence = inputs.length === 1 && isImageSequence(inputs[0]!) && !existsSync(inputs[0]!);
  if (inputs.length === 1 && isVideoInput(inputs[0]!) && (!isImagePath(inputs[0]!) || sequence)) return detectVideoCommand(inputs[0]!, options);
  if (options.track || options.mot !== undefined) throw new DeimError('ERR_INVALID_ARGUMENT', '--track and --mot work on a video (a file, an image sequence or a stream), not on images');
  const { files, problems } = await expandInputs(inputs, { recursive: options.recursive === true });
  const log = (s: string) => process.stderr.write(s + '\n');
  if (files.length === 0) {
    for (const p of problems) log(`deimv2: ${p.message}`);
    if (problems.length === 0) log('deimv2: no input images');
    return 1;
  }
  const outIsDir = options.out !== undefined && (files.length > 1 || isDirectory(options.out) || options.out.endsWith(path.sep) || path.extname(options.out) === '');
  if (options.out !== undefined && outIsDir) {
    try {
      mkdirSync(options.out, { recursive: true });
    } catch (e) {
      throw new DeimError('ERR_OUTPUT_WRITE', `cannot create output folder ${options.out}: ${errorMessage(e)}`, { input: options.out });
    }
  }
  const jsonToStdout = options.json === '-';
  const printLines = !options.quiet && !jsonToStdout;

  const detector = await Detector.create(detectorOptions);
  if (!options.quiet) log(`deimv2: ${detector.spec.variant ?? path.basename(detector.modelPath)} on ${detector.backendName} (${detector.description}; ${detector.backendReason})`);
  const start = performance.now();
  // Up to 50 images get a line each; more get a progress bar instead.
  const perImageLines = printLines && files.length <= 50;
  const progress = createProgress(files.length, { quiet: options.quiet === true || perImageLines });
  const entries: Entry[] = new Array(files.length);
  const writes: Array<Promise<void>> = [];
  // Inputs from different folders can share a base name: the second becomes name-1.jpg, and so on.
  const usedTargets = new Map<string, number>();
  const uniqueTarget = (target: string): string => {
    const seen = usedTargets.get(target) ?? 0;
    usedTargets.set(target, seen + 1);
    if (seen === 0) return target;
    const ext = path.extname(target);
    return uniqueTarget(`${target.slice(0, target.length - ext.length)}-${seen}${ext}`);
  };
  let detections = 0;
  try {
    // A window of chunks in flight keeps every worker busy while results are handled in order.
    const window = Math.max(2, detector.stats().runners * 4) * detector.batchSize;
    const pending: Array<Promise<Entry[]>> = [];
    let next = 0;
    let done = 0;
    const launch = () => {
      while (next < files.length && pending.length * detector.batchSize < window) {
        const chunk = files.slice(next, next + detector.batchSize);
        next += chunk.length;
        pending.push(detector.detectBatch(chunk, { returnImage: options.out !== undefined }));
      }
    };
    launch();
    while (pending.length > 0) {
      const chunk = await pending.shift()!;
      launch();
      for (const entry of chunk) {
        const index = done++;
        const file = files[index]!;
        entries[index] = entry;
        progress.tick();
        if ('error' in entry) continue;
        detections += entry.detections.length;
        if (perImageLines) log(formatLine(file, entry));
        if (options.out !== undefined && entry.image) {
          const image = entry.image;
          drawDetections(image, entry.detections);
          const out = options.out;
          // A bad target (e.g. the input itself) fails this file only.
          const write = Promise.resolve().then(() => writeAnnotatedImage(image, uniqueTarget(outputPathFor(file, out, outIsDir))));
          writes.push(write.catch((e) => void (entries[index] = failureOf(file, e))));
          delete entry.image;
        }
      }
    }
    await Promise.all(writes);
  } finally {
    progress.stop();
    await detector.close();
  }
  const seconds = (performance.now() - start) / 1000;
  const failures = entries.filter((e): e is DetectionFailure => 'error' in e);
  const stats = detector.stats();

  if (options.json !== undefined) {
    const doc = {
      model: detector.spec.variant ?? detector.modelPath,
      backend: detector.backendName,
      results: entries.map((e, i) =>
        'error' in e ? { file: files[i]!, error: e.error.message } : { file: files[i]!, width: e.width, height: e.height, detections: e.detections },
      ),
    };
    const text = JSON.stringify(doc, null, 2) + '\n';
    if (jsonToStdout) process.stdout.write(text);
    else {
      try {
        await writeFile(options.json, text);
      } catch (e) {
        throw new DeimError('ERR_OUTPUT_WRITE', `cannot write JSON to ${options.json}: ${errorMessage(e)}`, { input: options.json });
      }
    }
  }

  for (const p of problems) log(`deimv2: ${p.message}`);
  if (failures.length > 0) {
    log(`deimv2: ${failures.length} of ${files.length} file(s) failed:`);
    for (const f of failures) log(`  ${f.error.message} [${f.error.code}]`);
  }
  const ok = files.length - failures.length;
  const modelRate = stats.inferMs > 0 ? (stats.images * stats.runners) / (stats.inferMs / 1000) : 0;
  log(
    `deimv2: ${ok} image(s), ${detections} detection(s)` +
      (failures.length ? `, ${failures.length} failed` : '') +
      ` in ${seconds.toFixed(2)} s | model ${modelRate.toFixed(1)} img/s, end to end ${(ok / seconds).toFixed(1)} img/s`,
  );
  return failures.length > 0 || problems.length > 0 ? 1 : 0;
}

async function detectVideoCommand(input: string, options: DetectCliOptions): Promise<number> {
  checkLocalSource(input); // a missing file is reported before the model loads
  if (options.mot !== undefined && !options.track) throw new DeimError('ERR_INVALID_ARGUMENT', '--mot needs --track');
  if (options.mot !== undefined) checkOutputPath(options.mot, [input], '--mot');
  if (options.track) new TrackSession(trackOptionsFromCli(options as unknown as Record<string, unknown>)); // bad --line/--zone fail before the model loads
  const detector = await Detector.create(detectorOptionsFrom(options));
  try {
    if (!options.quiet) process.stderr.write(`deimv2: ${detector.spec.variant ?? path.basename(detector.modelPath)} on ${detector.backendName} (${detector.description}; ${detector.backendReason})\n`);
    const summary = await runVideoDetect(detector, input, {
      ...(options.out !== undefined ? { out: options.out } : {}),
      ...(options.json !== undefined ? { json: options.json } : {}),
      ...(options.mot !== undefined ? { mot: options.mot } : {}),
      ...(options.track ? { video: { track: trackOptionsFromCli(options as unknown as Record<string, unknown>) } } : {}),
      quiet: options.quiet === true,
    });
    if (options.quiet) process.stderr.write(summaryLine(summary) + '\n');
    return summary.decodeError ? 1 : 0;
  } finally {
    await detector.close();
  }
}

function formatLine(file: string, r: DetectorResult): string {
  const items = r.detections.map((d) => `${d.label} ${d.score.toFixed(2)} [${d.box.map((v) => Math.round(v)).join(',')}]`);
  return `${file} (${r.width}x${r.height}): ${items.length} detection(s)${items.length ? ': ' + items.join(', ') : ''}`;
}

function failureOf(file: string, e: unknown): DetectionFailure {
  return { file, error: { code: e instanceof DeimError ? e.code : 'ERR_OUTPUT_WRITE', message: errorMessage(e) } };
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
