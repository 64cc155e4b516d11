// Times the fused preprocessing (Pillow-exact bilinear resize + CHW float32) per image.
//   npm run build && node bench/resize.js [--size 320] [--runs 50]
// Decoding is not timed. Run it on a quiet machine: timings on a busy one are noisy.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { imageToTensor, tensorSize } from '../dist/image/tensor.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const shared = process.env.DEIMV2_SHARED ?? path.join(root, '..', 'shared');
const { values } = parseArgs({ options: { size: { type: 'string', default: '320' }, runs: { type: 'string', default: '50' } } });
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

/** Median ms per call of imageToTensor over `images` (each run goes through all of them). */
function time(images, mode) {
  const out = new Float32Array(tensorSize(size));
  for (let i = 0; i < 5; i++) for (const im of images) imageToTensor(im, size, mode, 'none', out); // warm-up: JIT, weight tables
  const perImage = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (const im of images) imageToTensor(im, size, mode, 'none', out);
    perImage.push(Number(process.hrtime.bigint() - t0) / 1e6 / images.length);
  }
  return median(perImage);
}

// A real photo decoded then brought to 640x480 (with sharp; only the input size matters here).
const { data: vga } = await sharp(path.join(shared, 'images', 'example.jpg')).resize(640, 480, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const vgaImage = { data: vga, width: 640, height: 480, channels: 3 };
const cocoDir = path.join(shared, 'coco', 'val2017');
const coco = await Promise.all(readdirSync(cocoDir).filter((f) => f.endsWith('.jpg')).sort().map((f) => decode(path.join(cocoDir, f))));

console.log(`imageToTensor to ${size}x${size}, median of ${runs} runs (node ${process.version}, ${process.arch})`);
console.log(`  640x480 stretch:   ${time([vgaImage], 'stretch').toFixed(3)} ms/image`);
console.log(`  640x480 letterbox: ${time([vgaImage], 'letterbox').toFixed(3)} ms/image`);
console.log(`  COCO (${coco.length} images) stretch: ${time(coco, 'stretch').toFixed(3)} ms/image`);
