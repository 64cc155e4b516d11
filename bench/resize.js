// Times the fused preprocessing (Pillow-exact bilinear resize + CHW float32) per image, on the
// JavaScript passes and on the WebAssembly SIMD kernels, interleaved run by run so that load from
// other processes hits both alike.
//   npm run build && node bench/resize.js [--size 320] [--runs 50] [--js]   (--js: JavaScript only)
// Decoding is not timed. Prints the median and the fastest run: on a busy machine the median
// mostly measures the other processes, the fastest run is closer to the real cost.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { imageToTensor, imageToTensorJs, tensorSize } from '../dist/image/tensor.js';
import { wasmResizeAvailable } from '../dist/image/wasm-resize.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const shared = process.env.DEIMV2_SHARED ?? path.join(root, '..', 'shared');
const { values } = parseArgs({ options: { size: { type: 'string', default: '320' }, runs: { type: 'string', default: '50' }, js: { type: 'boolean', default: false } } });
const size = Number(values.size);
const runs = Number(values.runs);

async function decode(file) {
  const { data, info } = await sharp(file).rotate().removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const paths = [['js', imageToTensorJs]];
if (!values.js && wasmResizeAvailable()) paths.push(['wasm', imageToTensor]);

/**
 * ms per image of each path over `images` (each run goes through all of them, the paths take
 * turns run by run): median and min per path, and the ratio of the JavaScript to the WASM median.
 */
function time(images, mode) {
  const out = new Float32Array(tensorSize(size));
  for (const [, convert] of paths) for (let i = 0; i < 5; i++) for (const im of images) convert(im, size, mode, 'none', out); // warm-up: JIT, weight tables, memory
  const perImage = paths.map(() => []);
  for (let r = 0; r < runs; r++) {
    paths.forEach(([, convert], p) => {
      const t0 = process.hrtime.bigint();
      for (const im of images) convert(im, size, mode, 'none', out);
      perImage[p].push(Number(process.hrtime.bigint() - t0) / 1e6 / images.length);
    });
  }
  const parts = paths.map(([name], p) => `${name} ${median(perImage[p]).toFixed(3)} median / ${Math.min(...perImage[p]).toFixed(3)} min`);
  if (paths.length === 2) parts.push(`speed-up ${(median(perImage[0]) / median(perImage[1])).toFixed(2)}x`);
  return `${parts.join(', ')} ms/image`;
}

// A real photo decoded then brought to 640x480 (with sharp; only the input size matters here).
const { data: vga } = await sharp(path.join(shared, 'images', 'example.jpg')).resize(640, 480, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const vgaImage = { data: vga, width: 640, height: 480, channels: 3 };
const cocoDir = path.join(shared, 'coco', 'val2017');
const coco = await Promise.all(readdirSync(cocoDir).filter((f) => f.endsWith('.jpg')).sort().map((f) => decode(path.join(cocoDir, f))));

console.log(`imageToTensor to ${size}x${size}, ${runs} runs, paths: ${paths.map(([n]) => n).join(', ')} (node ${process.version}, ${process.arch})`);
console.log(`  640x480 stretch:   ${time([vgaImage], 'stretch')}`);
console.log(`  640x480 letterbox: ${time([vgaImage], 'letterbox')}`);
console.log(`  COCO (${coco.length} images) stretch: ${time(coco, 'stretch')}`);
