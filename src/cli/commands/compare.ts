/**
 * `deimv2 compare`: the same annotated images through two configurations (variants, backends,
 * precisions, resize modes), then a table of AP, AP50, AP75 and how much their detections agree.
 *
 *   deimv2 compare -i val2017 -a instances.json --a "model=atto,resize=stretch" --b "model=atto,resize=letterbox"
 *
 * The configurations run one after the other, so each has the whole machine.
 */
import type { Command } from 'commander';
import { detectionAgreement, type Agreement } from '../../eval/agreement.js';
import { readJsonFile } from '../../eval/coco-dataset.js';
import { detectImages, findAnnotatedImages, type DetectImagesRun } from '../../eval/detect-images.js';
import { evaluateJson, type StatName } from '../../eval/metrics.js';
import { formatFixed3 } from '../../eval/summary-format.js';
import { DeimError } from '../../errors.js';
import { printable } from '../../output/printable.js';
import { decimal, detectorOptionsFrom, type DetectorCliOptions } from '../options.js';
import { createProgress } from '../progress.js';
import { parseLimit } from './eval.js';

interface CompareCliOptions {
  images: string;
  annotations: string;
  a: string;
  b: string;
  limit?: string;
  score: string;
  json?: boolean;
  quiet?: boolean;
}

/** Keys of a configuration string, and the detector option each sets. */
const CONFIG_KEYS: Record<string, keyof DetectorCliOptions> = {
  model: 'model',
  'model-dir': 'modelDir',
  backend: 'backend',
  layout: 'layout',
  threads: 'threads',
  batch: 'batch',
  resize: 'resize',
  precision: 'precision',
  engine: 'engine',
  device: 'device',
  'class-names': 'classNames',
};

/** "model=atto,resize=letterbox" -> detector CLI options (validated by detectorOptionsFrom). */
export function parseConfiguration(text: string, flag: string): DetectorCliOptions {
  const out: DetectorCliOptions = {};
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? '' : part.slice(0, eq).trim();
    const value = eq < 0 ? '' : part.slice(eq + 1).trim();
    const option = CONFIG_KEYS[key];
    if (!option || value === '') {
      throw new DeimError('ERR_INVALID_ARGUMENT', `${flag} "${text}": expected key=value pairs separated by commas, with keys ${Object.keys(CONFIG_KEYS).join(', ')}; got "${part}"`, { input: text });
    }
    out[option] = value;
  }
  return out;
}

export function register(program: Command): void {
  program
    .command('compare')
    .description('run the same annotated images through two configurations: AP, AP50, AP75 and detection agreement')
    .requiredOption('-i, --images <dir>', 'folder with the annotated images')
    .requiredOption('-a, --annotations <file>', 'COCO instances file (ground truth)')
    .requiredOption('--a <config>', `first configuration, key=value pairs: ${Object.keys(CONFIG_KEYS).join(', ')}`)
    .requiredOption('--b <config>', 'second configuration, same keys')
    .option('--limit <n>', 'only the first N annotated images found in --images')
    .option('--score <s>', 'agreement counts detections at this score or above', '0.4')
    .option('--json', 'print the comparison as JSON on stdout')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', '\nExample:\n  deimv2 compare -i val2017 -a instances_val2017.json --a "model=atto,resize=stretch" --b "model=atto,resize=letterbox"')
    .action(async (options: CompareCliOptions) => {
      process.exitCode = await compareCommand(options);
    });
}

const COLUMNS: StatName[] = ['AP', 'AP50', 'AP75'];

export async function compareCommand(options: CompareCliOptions): Promise<number> {
  const log = (s: string) => process.stderr.write(printable(s) + '\n');
  const minScore = decimal(options.score);
  if (!Number.isFinite(minScore) || minScore < 0 || minScore > 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `--score must be a number from 0 to 1, got "${options.score}"`, { input: options.score });
  }
  const configs = [
    { flag: '--a', text: options.a, detector: detectorOptionsFrom(parseConfiguration(options.a, '--a')) },
    { flag: '--b', text: options.b, detector: detectorOptionsFrom(parseConfiguration(options.b, '--b')) },
  ];
  const annotations = await readJsonFile(options.annotations);
  const { images, invalid, missing } = findAnnotatedImages(annotations, options.images, { limit: parseLimit(options.limit), source: options.annotations });
  for (const m of invalid) log(`deimv2: ${options.annotations}: ${m}: left out`);
  if (missing > 0 && !options.quiet) log(`deimv2: ${missing} annotated image(s) are not in ${options.images}: they are left out`);

  const runs: DetectImagesRun[] = [];
  for (const config of configs) {
    const progress = createProgress(images.length, { quiet: options.quiet === true, label: config.flag.slice(2) });
    try {
      runs.push(await detectImages(config.detector, images, () => progress.tick()));
    } finally {
      progress.stop();
    }
    for (const f of runs[runs.length - 1]!.failures) log(`deimv2: ${config.flag}: ${f.message}`);
  }
  const ids = images.map((img) => img.id);
  const evaluations = runs.map((run, i) => evaluateJson(annotations, options.annotations, run.results, `${configs[i]!.flag} detections`, ids));
  const agreement = detectionAgreement(runs[0]!.perImage, runs[1]!.perImage, { minScore });

  if (options.json) {
    const doc = {
      images: images.length,
      a: { config: options.a, run: runs[0]!.description, seconds: runs[0]!.seconds, metrics: evaluations[0]!.metrics },
      b: { config: options.b, run: runs[1]!.description, seconds: runs[1]!.seconds, metrics: evaluations[1]!.metrics },
      agreement,
    };
    process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
    return 0;
  }
  const rows = runs.map((run, i) => ({ label: `${configs[i]!.flag.slice(2)}: ${run.description}`, metrics: evaluations[i]!.metrics }));
  const width = Math.max(12, ...rows.map((r) => r.label.length));
  const lines = [`${images.length} image(s)`, `${''.padEnd(width)}  ${COLUMNS.map((c) => c.padStart(6)).join('  ')}`];
  for (const r of rows) lines.push(`${r.label.padEnd(width)}  ${COLUMNS.map((c) => formatFixed3(r.metrics[c]).padStart(6)).join('  ')}`);
  const delta = (c: StatName) => {
    const d = rows[1]!.metrics[c] - rows[0]!.metrics[c];
    return `${d >= 0 ? '+' : '-'}${formatFixed3(Math.abs(d))}`.padStart(6);
  };
  lines.push(`${'b - a'.padEnd(width)}  ${COLUMNS.map(delta).join('  ')}`);
  lines.push('', formatAgreement(agreement));
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

function formatAgreement(a: Agreement): string {
  const signed = (v: number) => `${v >= 0 ? '+' : '-'}${Math.abs(v).toFixed(4)}`;
  return (
    `agreement at score >= ${a.minScore}: ${(a.agreement * 100).toFixed(1)}% ` +
    `(${a.matched} pairs with the same class and IoU >= ${a.minIou}; ${a.countA} detections in a, ${a.countB} in b)\n` +
    `matched pairs: mean score delta (b - a) ${signed(a.meanScoreDelta)}, mean |delta| ${a.meanAbsScoreDelta.toFixed(4)}, mean IoU ${a.meanIou.toFixed(3)}`
  );
}
