/**
 * `deimv2 eval`: COCO metrics, as pycocotools prints them.
 *   deimv2 eval --annotations instances.json --results results.json [--per-class] [--json]
 *   deimv2 eval --model femto --images val2017 --annotations instances.json [--write-results out.json] [--limit N]
 * The second form runs the detector over the annotated images with no score threshold (all
 * 300 queries, as the official evaluation), scores the detections, and with --write-results
 * saves them as a COCO results file (planned before the model loads: never over an input).
 */
import type { Command } from 'commander';
import { requireCommander } from '../../cjs.js';
import { readJsonFile, readResultsBytes } from '../../eval/coco-dataset.js';
import { detectImages, findAnnotatedImages } from '../../eval/detect-images.js';
import { evaluateJson, evaluateResultsBytes, type JsonEvaluation } from '../../eval/metrics.js';
import { writeCocoResults } from '../../eval/results-writer.js';
import { formatPerClass, formatSummary } from '../../eval/summary-format.js';
import { DeimError } from '../../errors.js';
import { planOutputs } from '../../output/plan.js';
import { printable } from '../../output/printable.js';
import { decimal, detectorOptionsFrom, type DetectorCliOptions } from '../options.js';
import { detectorInputs } from '../inputs.js';
import { createProgress } from '../progress.js';

const { Option } = requireCommander();

interface EvalCliOptions extends DetectorCliOptions {
  annotations: string;
  results?: string;
  writeResults?: string;
  images?: string;
  limit?: string;
  perClass?: boolean;
  json?: boolean;
  quiet?: boolean;
}

/** The detector options that make sense for evaluation (no threshold, classes or max: all 300 are scored). */
export function addEvalDetectorOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <name|file>', 'variant (atto, femto, pico, n, s, m, l, x) or path to an .onnx file', 'atto')
    .option('--model-dir <dir>', 'folder searched first for variant files')
    .addOption(new Option('-b, --backend <name>', 'backend').choices(['auto', 'cpu', 'tensorrt']).default('auto'))
    .addOption(new Option('--layout <layout>', 'CPU layout').choices(['pool', 'single']))
    .option('--threads <n>', 'pool workers, or the single session\'s threads')
    .option('--batch <n>', 'images per model call', '1')
    .addOption(new Option('--resize <mode>', 'stretch = official evaluation; letterbox = official ONNX demo').choices(['stretch', 'letterbox']).default('stretch'))
    .option('--class-names <file>', 'class names for a fine-tuned model')
    .addOption(new Option('--precision <p>', 'TensorRT: engine precision').choices(['fp16', 'fp32']))
    .option('--engine <file>', 'TensorRT: use this prebuilt engine')
    .option('--device <n>', 'TensorRT: GPU index', '0')
    .option('--limit <n>', 'only the first N image entries of the annotations (with --images: the first N found there)');
}

export function parseLimit(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (!Number.isInteger(n) || n < 1) throw new DeimError('ERR_INVALID_ARGUMENT', `--limit must be an integer >= 1, got "${value}"`, { input: value });
  return n;
}

export function register(program: Command): void {
  addEvalDetectorOptions(
    program
      .command('eval')
      .description('COCO bbox metrics exactly as pycocotools computes them: of a results file, or of a model run over annotated images')
      .requiredOption('-a, --annotations <file>', 'COCO instances file (ground truth)')
      .option('-r, --results <file>', 'COCO results file to score')
      .option('-w, --write-results <file>', 'with --images: also write the detections here as a COCO results file')
      .option('-i, --images <dir>', 'run the detector over the annotated images in this folder (file names from the annotations)'),
  )
    .option('--per-class', 'also print AP and AP50 of each category')
    .option('--json', 'print the metrics as JSON on stdout')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', '\nExamples:\n  deimv2 eval -a instances_val2017.json -r results.json\n  deimv2 eval -m femto -b cpu -i val2017 -a instances_val2017.json -w femto.json')
    .action(async (options: EvalCliOptions) => {
      process.exitCode = await evalCommand(options);
    });
}

export async function evalCommand(options: EvalCliOptions): Promise<number> {
  const log = (s: string) => process.stderr.write(printable(s) + '\n');
  const limit = parseLimit(options.limit);
  if (options.images !== undefined && options.results !== undefined) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `--results names a results file to score; with --images the detections are scored as they are made: use --write-results <file> to save them as well`, { input: options.results });
  }
  if (options.images === undefined && options.writeResults !== undefined) {
    throw new DeimError('ERR_INVALID_ARGUMENT', '--write-results saves the detections of a model run: it needs --images <dir>', { input: options.writeResults });
  }
  const annotations = await readJsonFile(options.annotations);
  let evaluation: JsonEvaluation;
  let header = '';
  let status = 0;

  if (options.images !== undefined) {
    // One rule: the evaluation covers the images detected. Entries without a usable file_name, files
    // not in the folder and images that cannot be read are left out (their ground truth is not
    // scored), each said; images that could not be read (or bad entries) make the exit status 1.
    const { images, invalid, missing } = findAnnotatedImages(annotations, options.images, { limit, source: options.annotations });
    for (const m of invalid) log(`deimv2: ${options.annotations}: ${m}: left out`);
    if (missing > 0 && !options.quiet) log(`deimv2: ${missing} annotated image(s) are not in ${options.images}: they are left out`);
    const detectorOptions = detectorOptionsFrom(options);
    if (options.writeResults !== undefined) {
      planOutputs({
        inputs: [options.annotations, ...images.map((img) => img.file), ...detectorInputs(detectorOptions)],
        outputs: [{ path: options.writeResults, kind: 'eval-results', flag: '--write-results' }],
      });
    }
    const progress = createProgress(images.length, { quiet: options.quiet === true, label: 'eval' });
    let run;
    try {
      run = await detectImages(detectorOptions, images, () => progress.tick());
    } finally {
      progress.stop();
    }
    for (const f of run.failures) log(`deimv2: ${f.message}`);
    const done = images.length - run.failures.length;
    header = `${run.description}: ${done} image(s), ${run.results.length} detection(s) in ${run.seconds.toFixed(1)} s`;
    if (!options.quiet) log(`deimv2: ${header}`);
    if (options.writeResults !== undefined) await writeCocoResults(options.writeResults, run.results);
    const failed = new Set(run.failures.map((f) => f.file));
    if (failed.size > 0) log(`deimv2: ${failed.size} image(s) could not be read: they are left out of the evaluation`);
    if (failed.size > 0 || invalid.length > 0) status = 1;
    evaluation = evaluateJson(annotations, options.annotations, run.results, options.writeResults ?? '(detections)', images.filter((img) => !failed.has(img.file)).map((img) => img.id));
  } else {
    if (options.results === undefined) {
      throw new DeimError('ERR_INVALID_ARGUMENT', 'give --results <file> to score, or --images <dir> to run a model first');
    }
    evaluation = evaluateResultsBytes(annotations, options.annotations, await readResultsBytes(options.results), options.results, limit === undefined ? undefined : firstImageIds(annotations, limit));
  }

  if (options.json) {
    const doc = {
      annotations: options.annotations,
      results: options.results ?? options.writeResults ?? null,
      ...(header ? { run: header } : {}),
      images: evaluation.gt.imageIds.length,
      metrics: evaluation.metrics,
      ...(options.perClass ? { perClass: evaluation.perClass } : {}),
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
  } else {
    process.stdout.write(formatSummary(evaluation.result.lines) + '\n');
    if (options.perClass) process.stdout.write('\n' + formatPerClass(evaluation.perClass) + '\n');
  }
  return status;
}

/** The ids of the first `limit` image entries (for --limit without --images). */
function firstImageIds(annotations: unknown, limit: number): number[] {
  const images = (annotations as { images?: Array<{ id: number }> }).images;
  return Array.isArray(images) ? images.slice(0, limit).map((img) => img.id) : [];
}
