/** Options shared by the commands that run a detector, and their conversion to DetectorOptions. */
import type { Command } from 'commander';
import { requireCommander } from '../cjs.js';
import type { DetectorOptions } from '../detector.js';
import { DeimError } from '../errors.js';
import { parseMemorySize } from '../pool/budget.js';

const { Option } = requireCommander();

export interface DetectorCliOptions {
  model?: string;
  modelDir?: string;
  backend?: string;
  layout?: string;
  threads?: string;
  batch?: string;
  threshold?: string;
  classes?: string;
  maxDetections?: string;
  resize?: string;
  classNames?: string;
  normalization?: string;
  inputSize?: string;
  device?: string;
  engine?: string;
  precision?: string;
  maxMemory?: string;
  gpuPreprocess?: string;
  cudaGraphs?: string;
}

export function addDetectorOptions(cmd: Command, defaults: { threshold?: string } = {}): Command {
  return cmd
    .option('-m, --model <name|file>', 'variant (atto, femto, pico, n, s, m, l, x) or path to an .onnx file', 'atto')
    .option('--model-dir <dir>', 'folder searched first for variant files (then $DEIMV2_MODEL_DIR, ./models)')
    .addOption(new Option('-b, --backend <name>', 'backend').choices(['auto', 'cpu', 'tensorrt']).default('auto'))
    .addOption(new Option('--layout <layout>', 'CPU layout: pool = one single-thread session per core; single = one session on all cores').choices(['pool', 'single']))
    .option('--threads <n>', 'pool workers, or the single session\'s threads (default: CPU cores)')
    .option('--batch <n>', 'images per model call', '1')
    .option('-t, --threshold <score>', 'score threshold 0..1', defaults.threshold ?? '0.4')
    .option('-c, --classes <names>', 'keep only these classes, comma-separated (person,car)')
    .option('--max-detections <n>', 'keep at most this many detections per image')
    .addOption(new Option('--resize <mode>', 'stretch = official evaluation (PIL bilinear of the whole image); letterbox = official ONNX demo').choices(['stretch', 'letterbox']).default('stretch'))
    .option('--class-names <file>', 'class names for a fine-tuned model: one name a line, or JSON')
    .addOption(new Option('--normalization <kind>', 'custom models: input normalisation').choices(['none', 'imagenet']))
    .option('--input-size <n>', 'custom models with a dynamic input: input side in pixels')
    .option('--device <n>', 'TensorRT: GPU index', '0')
    .option('--engine <file>', 'TensorRT: use this prebuilt engine')
    .addOption(new Option('--precision <p>', 'TensorRT: engine precision').choices(['fp16', 'fp32']))
    .option('--max-memory <size>', 'decoded pixels in memory at once, e.g. 2GB or 512MB (default: 1/16 of RAM, 256 MB..1 GB)')
    .addOption(new Option('--gpu-preprocess <on|off>', 'TensorRT: resize and normalise on the GPU (off = tensor made on the CPU)').choices(['on', 'off']).default('on'))
    .addOption(new Option('--cuda-graphs <on|off>', 'TensorRT: replay inference from CUDA graphs').choices(['on', 'off']).default('on'));
}

/**
 * A number option's text as a number: plain decimal only ("0.5", "1e-3", "16"), NaN for anything
 * else that Number() would take ("0x1", "0b1", " 1", "Infinity", ""), so every numeric option of
 * the CLI reads its text the same way.
 */
export function decimal(text: string | undefined): number {
  return text !== undefined && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text) ? Number(text) : NaN;
}

function int(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (!Number.isInteger(n) || n < min) throw new DeimError('ERR_INVALID_ARGUMENT', `--${name} must be an integer >= ${min}, got "${value}"`, { input: value });
  return n;
}

function num(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = decimal(value);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw new DeimError('ERR_INVALID_ARGUMENT', `--${name} must be a number from 0 to 1, got "${value}"`, { input: value });
  return n;
}

function onOff(value: string, name: string): boolean {
  if (value === 'on') return true;
  if (value === 'off') return false;
  throw new DeimError('ERR_INVALID_ARGUMENT', `--${name} must be on or off, got "${value}"`, { input: value });
}

export function detectorOptionsFrom(o: DetectorCliOptions): DetectorOptions {
  const out: DetectorOptions = {};
  if (o.model !== undefined) out.model = o.model;
  if (o.modelDir !== undefined) out.modelDir = o.modelDir;
  if (o.backend !== undefined) out.backend = o.backend as DetectorOptions['backend'] & string;
  if (o.layout !== undefined) out.layout = o.layout as 'pool' | 'single';
  const threads = int(o.threads, 'threads', 1);
  if (threads !== undefined) out.threads = threads;
  const batch = int(o.batch, 'batch', 1);
  if (batch !== undefined) out.batch = batch;
  const threshold = num(o.threshold, 'threshold');
  if (threshold !== undefined) out.threshold = threshold;
  if (o.classes !== undefined) out.classes = o.classes.split(',').map((s) => s.trim()).filter(Boolean);
  const max = int(o.maxDetections, 'max-detections', 1);
  if (max !== undefined) out.maxDetections = max;
  if (o.resize !== undefined) out.resize = o.resize as 'stretch' | 'letterbox';
  if (o.classNames !== undefined) out.classNames = o.classNames;
  if (o.normalization !== undefined) out.normalization = o.normalization as 'none' | 'imagenet';
  const size = int(o.inputSize, 'input-size', 32);
  if (size !== undefined) out.inputSize = size;
  const device = int(o.device, 'device', 0);
  if (device !== undefined) out.device = device;
  if (o.engine !== undefined) out.engine = o.engine;
  if (o.precision !== undefined) out.precision = o.precision as 'fp16' | 'fp32';
  if (o.maxMemory !== undefined) out.maxMemory = parseMemorySize(o.maxMemory);
  if (o.gpuPreprocess !== undefined) out.gpuPreprocess = onOff(o.gpuPreprocess, 'gpu-preprocess');
  if (o.cudaGraphs !== undefined) out.cudaGraphs = onOff(o.cudaGraphs, 'cuda-graphs');
  return out;
}
