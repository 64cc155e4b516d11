/** `deimv2 detect <files|dirs|globs...>`: detect, annotate, write JSON, summarise. */
import { existsSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { annotatedTargets, loadEncoder, writeAnnotatedImage } from '../../annotate/write.js';
import { requireSharp } from '../../cjs.js';
import { Detector, type DetectorOptions, type DetectorResult } from '../../detector.js';
import { DeimError, errorMessage } from '../../errors.js';
import { planOutputs, printable, removeTemporaryFiles, settleWrites, writeFileAtomic, writeFileAtomicSync } from '../../output/index.js';
import { dieOf, onStopSignals, signalName, stoppedStatus, type StopSignal } from '../../signals.js';
import type { DetectionFailure } from '../../postprocess/types.js';
import { timeStage } from '../../perf/stage-times.js';
import { checkLocalSource, isAudioFile, isImageSequence, isVideoInput } from '../../video/source.js';
import { trackOptionsFromCli } from '../../track/options.js';
import { detectorInputs, expandInputs, isImagePath } from '../inputs.js';
import { addDetectorOptions, detectorOptionsFrom, type DetectorCliOptions } from '../options.js';
import { createProgress } from '../progress.js';
import { addTrackOptions } from '../track-options.js';

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
      .argument('<inputs...>', 'image files, folders, glob patterns or http(s) image URLs; or one video file, image-sequence pattern (frames/%04d.png), rtsp/http URL or /dev/videoN'),
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
  // An audio file goes to the video path too, which says it has no video stream (not "not an image").
  const video = inputs.length === 1 && (isVideoInput(inputs[0]!) || isAudioFile(inputs[0]!));
  if (video && (!isImagePath(inputs[0]!) || sequence)) return detectVideoCommand(inputs[0]!, options, detectorOptions);
  // One GIF or WebP asked for a video's outputs (an MP4 --out, --track, --mot) is read as a video:
  // every frame of an animation. Otherwise it is an image (its first frame; see animationNote).
  const wantsVideo = options.track === true || options.mot !== undefined || (options.out !== undefined && VIDEO_OUT_EXTENSIONS.includes(path.extname(options.out).toLowerCase()));
  if (inputs.length === 1 && ANIMATED_IMAGE.test(inputs[0]!) && wantsVideo) return detectVideoCommand(inputs[0]!, options, detectorOptions);
  if (options.track || options.mot !== undefined) throw new DeimError('ERR_INVALID_ARGUMENT', '--track and --mot work on a video (a file, an image sequence or a stream), not on images');
  const { files, problems, notes, unreadable } = await expandInputs(inputs, { recursive: options.recursive === true });
  const log = (s: string) => process.stderr.write(printable(s) + '\n');
  for (const note of notes) log(`deimv2: ${note}`);
  // What cannot run is said before the model loads.
  for (const p of [...problems, ...unreadable.values()]) log(`deimv2: ${p.message}`);
  const runnable = files.filter((f) => !unreadable.has(f));
  if (runnable.length === 1 && inputs.length === 1 && !options.quiet) {
    const note = await animationNote(runnable[0]!);
    if (note) log(note);
  }
  if (runnable.length === 0) {
    if (files.length === 0 && problems.length === 0) log('deimv2: no input images');
    return 1;
  }

  // Every output is planned and checked against every input before anything runs.
  const out = options.out;
  const outIsDir = out !== undefined && (isDirectory(out) || /[\\/]$/.test(out) || path.extname(out) === '');
  const targets = out === undefined ? new Map<string, string>() : annotatedTargets(runnable, files.length, out, outIsDir);
  // /dev/stdout is stdout itself: opening it fails when stdout is a socket (a parent's pipe in Node).
  const jsonToStdout = options.json === '-' || options.json === '/dev/stdout' || options.json === '/dev/fd/1';
  planOutputs({
    inputs: [...files, ...detectorInputs(detectorOptions)],
    outputs: [
      ...(out !== undefined && outIsDir ? [{ path: out, kind: 'folder', flag: '--out' }] : []),
      ...[...targets.values()].map((t) => ({ path: t, kind: 'image', flag: '--out' })),
      ...(options.json !== undefined && !jsonToStdout ? [{ path: options.json, kind: 'json', flag: '--json' }] : []),
    ],
  });
  const printLines = !options.quiet && !jsonToStdout;
  // The encoder and the drawing load while the model does (and only for --out), not behind the first decodes.
  // The first chunk's images are decoded while the model loads.
  const preload = { images: runnable.slice(0, detectorOptions.batch ?? 1), returnImage: out !== undefined, alone: runnable.length <= (detectorOptions.batch ?? 1) };
  const [detector, , draw] = await Promise.all([Detector.create({ ...detectorOptions, preload }), out !== undefined ? loadEncoder() : undefined, out !== undefined ? import('../../annotate/draw.js') : undefined]);
  if (!options.quiet) log(`deimv2: ${detector.spec.variant ?? path.basename(detector.modelPath)} on ${detector.backendLabel} (${detector.description}; ${detector.backendReason})`);
  const start = performance.now();
  // Up to 50 images get a line each; more get a progress bar instead.
  const perImageLines = printLines && runnable.length <= 50;
  const progress = createProgress(runnable.length, { quiet: options.quiet === true || perImageLines });
  // entries[i] is set once file i is finished (or failed); the JSON holds the finished ones.
  const entries: Array<Entry | undefined> = files.map((f) => {
    const problem = unreadable.get(f);
    return problem ? failureOf(f, problem) : undefined;
  });
  const indexOf = new Map(files.map((f, i) => [f, i]));
  const jsonText = (stopped: boolean) => timeStage('JSON', () => {
    const doc = {
      model: detector.spec.variant ?? detector.modelPath,
      backend: detector.backendLabel,
      ...(stopped ? { stopped: true } : {}),
      results: files.flatMap((file, i) => {
        const e = entries[i];
        if (!e) return [];
        return ['error' in e ? { file, error: e.error.message } : { file, width: e.width, height: e.height, detections: e.detections }];
      }),
    };
    return JSON.stringify(doc, null, 2) + '\n';
  });

  // Ctrl-C or SIGTERM: the first stops starting images and finishes those in flight (their
  // results and files are kept); the second quits at once, still leaving valid JSON of every
  // finished image.
  let interrupts = 0;
  let firstSignal: StopSignal = 'SIGINT';
  const onSignal = (signal: StopSignal) => {
    interrupts++;
    progress.stop();
    if (interrupts === 1) {
      firstSignal = signal;
      log(`deimv2: ${signal === 'SIGTERM' ? 'SIGTERM: ' : ''}stopping: finishing the images in flight (${signalName(signal)} again to quit now)`);
      return;
    }
    removeSignalHandlers();
    if (options.json !== undefined) {
      try {
        if (jsonToStdout) writeSync(1, jsonText(true));
        else writeFileAtomicSync(options.json, jsonText(true));
      } catch (e) {
        log(`deimv2: cannot write JSON to ${options.json}: ${errorMessage(e)}`);
      }
    }
    log(`deimv2: quit: ${entries.filter(Boolean).length} of ${files.length} file(s) finished${options.json !== undefined && !jsonToStdout ? ` (in ${options.json})` : ''}`);
    // Unfinished annotated images are temporary files: removed once the writes under way settle
    // (at most 300 ms: one could otherwise create its file just after). Then die of the signal
    // (process.exit would tear down worker threads that are inside onnxruntime, which aborts).
    void settleWrites(300).finally(() => {
      removeTemporaryFiles();
      dieOf(signal);
    });
  };
  const removeSignalHandlers = onStopSignals(onSignal);

  const writes: Array<Promise<void>> = [];
  try {
    // A window of chunks in flight keeps every worker busy while results are handled in order.
    const window = Math.max(2, detector.stats().runners * 4) * detector.batchSize;
    const pending: Array<{ chunk: string[]; result: Promise<Entry[]> }> = [];
    let next = 0;
    const launch = () => {
      while (interrupts === 0 && next < runnable.length && pending.length * detector.batchSize < window) {
        const chunk = runnable.slice(next, next + detector.batchSize);
        next += chunk.length;
        pending.push({ chunk, result: detector.detectBatch(chunk, { returnImage: out !== undefined }) });
      }
    };
    launch();
    while (pending.length > 0) {
      const { chunk, result } = pending.shift()!;
      const found = await result;
      launch();
      found.forEach((entry, k) => {
        const file = chunk[k]!;
        const index = indexOf.get(file)!;
        entries[index] = entry;
        progress.tick();
        if ('error' in entry) return;
        if (perImageLines) log(formatLine(file, entry));
        const target = targets.get(file);
        if (target !== undefined && entry.image) {
          const image = entry.image;
          draw!.drawDetections(image, entry.detections);
          // A file that cannot be written fails this file only (and is not counted as done).
          writes.push(writeAnnotatedImage(image, target).catch((e) => void (entries[index] = failureOf(file, e))));
          delete entry.image;
        }
      });
    }
    await Promise.all(writes);
  } catch (e) {
    removeSignalHandlers();
    throw e;
  } finally {
    progress.stop();
    await detector.close();
  }
  const seconds = (performance.now() - start) / 1000;
  // Stopped: a Ctrl-C came while images were left (one during the last writes changes nothing).
  const stopped = interrupts > 0 && entries.some((e) => e === undefined);
  const stats = detector.stats();

  // The handler stays until the JSON is written: a second Ctrl-C still leaves it whole.
  let jsonError: DeimError | undefined;
  try {
    if (options.json !== undefined) {
      const text = jsonText(stopped);
      if (jsonToStdout) process.stdout.write(text);
      else {
        try {
          await writeFileAtomic(options.json, text);
        } catch (e) {
          jsonError = new DeimError('ERR_OUTPUT_WRITE', `cannot write JSON to ${options.json}: ${errorMessage(e)}`, { input: options.json });
        }
      }
    }
  } finally {
    removeSignalHandlers();
  }

  const finished = entries.filter((e): e is Entry => e !== undefined);
  const failures = finished.filter((e): e is DetectionFailure => 'error' in e);
  for (const p of problems) log(`deimv2: ${p.message}`);
  if (failures.length > 0) {
    log(`deimv2: ${failures.length} of ${files.length} file(s) failed:`);
    for (const f of failures) log(`  ${f.error.message} [${f.error.code}]`);
  }
  if (jsonError) log(`deimv2: ${jsonError.message} [${jsonError.code}]`);
  const done = finished.filter((e): e is DetectorResult => !('error' in e));
  const detections = done.reduce((n, e) => n + e.detections.length, 0);
  const modelRate = stats.inferMs > 0 ? (stats.images * stats.runners) / (stats.inferMs / 1000) : 0;
  log(
    `deimv2: ${done.length} image(s), ${detections} detection(s)` +
      (failures.length ? `, ${failures.length} failed` : '') +
      (stopped ? `, stopped after ${finished.length} of ${files.length}` : '') +
      ` in ${seconds.toFixed(2)} s | model ${modelRate.toFixed(1)} img/s, end to end ${(done.length / seconds).toFixed(1)} img/s`,
  );
  if (stopped) return stoppedStatus(firstSignal);
  return failures.length > 0 || problems.length > 0 || jsonError ? 1 : 0;
}


/**
 * Where each input's annotated copy goes: `out` itself for one input, else a file in the folder
 * `out`. Inputs from different folders can share a base name: the second becomes name-1.jpg, and
 * so on. An --out file name for several inputs, or with an extension no encoder writes, is refused.
 */
/** Containers the annotated video can be written as (the encoder writes MP4). */
const VIDEO_OUT_EXTENSIONS = ['.mp4', '.m4v', '.mov'];

/** Image types that can hold an animation (several frames). */
const ANIMATED_IMAGE = /\.(gif|webp)$/i;

/**
 * For one animated GIF or WebP given as an image: a note that only its first frame is detected,
 * and how to get every frame (read from the header only; undefined for a still image).
 */
async function animationNote(file: string): Promise<string | undefined> {
  if (!ANIMATED_IMAGE.test(file)) return undefined;
  let pages: number | undefined;
  try {
    ({ pages } = await requireSharp()(file, { pages: 1 }).metadata());
  } catch {
    return undefined; // the image run reports what is wrong with it
  }
  if (pages === undefined || pages < 2) return undefined;
  const how = /\.gif$/i.test(file)
    ? `to detect every frame, read it as a video: --out ${path.basename(file, path.extname(file))}.mp4 (or --track)`
    : 'ffmpeg cannot read an animated WebP as a video: to detect every frame, convert it to an MP4 or an animated GIF first';
  return `deimv2: note: ${file} is animated (${pages} frames): as an image, only its first frame is detected; ${how}`;
}

async function detectVideoCommand(input: string, options: DetectCliOptions, detectorOptions: DetectorOptions): Promise<number> {
  checkLocalSource(input); // a missing file is reported before the model loads
  if (options.out !== undefined && !VIDEO_OUT_EXTENSIONS.includes(path.extname(options.out).toLowerCase())) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `--out ${options.out}: the annotated copy of a video is an H.264 MP4; give a file name ending in .mp4`, { input: options.out });
  }
  if (options.mot !== undefined && !options.track) throw new DeimError('ERR_INVALID_ARGUMENT', '--mot needs --track');
  // The video and tracking code loads only for a video.
  const [{ runVideoDetect, summaryLine }, { TrackSession }] = await Promise.all([import('../../video/run.js'), import('../../track/session.js')]);
  if (options.track) new TrackSession(trackOptionsFromCli(options as unknown as Record<string, unknown>)); // bad --line/--zone fail before the model loads
  planOutputs({
    inputs: [input, ...detectorInputs(detectorOptions)],
    outputs: [
      ...(options.out !== undefined ? [{ path: options.out, kind: 'video', flag: '--out' }] : []),
      ...(options.json !== undefined ? [{ path: options.json, kind: 'jsonl', flag: '--json' }] : []),
      ...(options.mot !== undefined && options.mot !== '-' ? [{ path: options.mot, kind: 'mot', flag: '--mot' }] : []),
    ],
  });
  // preload with no images and not alone: many frames follow (the CPU pool starts its per-core workers at once).
  const detector = await Detector.create({ ...detectorOptions, preload: { images: [] } });
  try {
    if (!options.quiet) process.stderr.write(printable(`deimv2: ${detector.spec.variant ?? path.basename(detector.modelPath)} on ${detector.backendLabel} (${detector.description}; ${detector.backendReason})`) + '\n');
    const summary = await runVideoDetect(detector, input, {
      ...(options.out !== undefined ? { out: options.out } : {}),
      ...(options.json !== undefined ? { json: options.json } : {}),
      ...(options.mot !== undefined ? { mot: options.mot } : {}),
      ...(options.track ? { video: { track: trackOptionsFromCli(options as unknown as Record<string, unknown>) } } : {}),
      quiet: options.quiet === true,
    });
    if (options.quiet) process.stderr.write(printable(summaryLine(summary)) + '\n');
    // Stopped by a signal: the outputs are finished, and the status says so, as for images (130, 143).
    if (summary.stopSignal) return stoppedStatus(summary.stopSignal);
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
