#!/usr/bin/env node
/**
 * Start-up cost of one image: `deimv2 detect one.jpg` against its floor, a bare Node process that
 * loads onnxruntime-node and runs the same model once on a tensor of the same size. The two are run
 * in turn (A B A B ...) and compared pair by pair, so the ratio holds when the machine's speed
 * drifts; the median ratio is the figure (issue 9 asks for <= 1.3).
 *
 *   node bench/startup.js [--runs 9] [--model atto] [--image examples/example.jpg]
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const runs = Number(arg('runs', '9'));
const model = arg('model', 'atto');
const image = path.resolve(arg('image', path.join(ROOT, 'examples', 'example.jpg')));

const { resolveModel, VARIANTS } = await import(path.join(ROOT, 'dist', 'index.js'));
const resolved = resolveModel(model);
const side = VARIANTS[resolved.variant ?? 'atto'].inputSize;

const floor = `
import ort from 'onnxruntime-node';
const s = await ort.InferenceSession.create(${JSON.stringify(resolved.path)}, { graphOptimizationLevel: 'all' });
const out = await s.run({
  images: new ort.Tensor('float32', new Float32Array(3 * ${side} * ${side}), [1, 3, ${side}, ${side}]),
  orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([640n, 480n]), [1, 2]),
});
process.stdout.write(String(out.scores.data.length) + '\\n');
`;
const commands = {
  floor: [process.execPath, ['--input-type=module', '-e', floor]],
  detect: [process.execPath, [path.join(ROOT, 'dist', 'cli', 'main.js'), 'detect', image, '--model', model, '--backend', 'cpu', '--quiet']],
};

function time([cmd, argv]) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { cwd: ROOT, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.slice(0, 3).join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

time(commands.floor);
time(commands.detect); // warm-up: file cache, JIT caches
const floorMs = [], detectMs = [], ratios = [];
for (let i = 0; i < runs; i++) {
  const f = time(commands.floor);
  const d = time(commands.detect);
  floorMs.push(f);
  detectMs.push(d);
  ratios.push(d / f);
}
const fmt = (xs) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;
console.log(`model ${model}, image ${path.relative(ROOT, image)}, ${runs} pairs`);
console.log(`floor  (node + onnxruntime-node + one run): ${fmt(floorMs)}`);
console.log(`detect (deimv2 detect one image):          ${fmt(detectMs)}`);
console.log(`ratio detect/floor, pair by pair: median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${Math.max(...ratios).toFixed(2)})`);
