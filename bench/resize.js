// Times the fused preprocessing (Pillow-exact bilinear resize + CHW float32) per image.
//   npm run build && node bench/resize.js [--size 320] [--runs 50]
// Decoding is not timed. Prints the median and the fastest run: on a busy machine the median
// mostly measures the other processes, the fastest run is closer to the real cost.
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

/** ms per call of imageToTensor over `images` (each run goes through all of them): median and min. */
function time(images, mode) {
  const out = new Float32Array(tensorSize(size));
  for (let i = 0; i < 5; i++) for (const im of images) imageToTensor(im, size, mode, 'none', out); // warm-up: JIT, weight tables
  const perImage = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (const im of images) imageToTensor(im, size, mode, 'none', out);
    perImage.push(Number(process.hrtime.bigint() - t0) / 1e6 / images.length);
  }
  return `${median(perImage).toFixed(3)} ms/image median, ${Math.min(...perImage).toFixed(3)} min`;
}

// A real photo decoded then brought to 640x480 (with sharp; only the input size matters here).
const { data: vga } = await sharp(path.join(shared, 'images', 'example.jpg')).resize(640, 480, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const vgaImage = { data: vga, width: 640, height: 480, channels: 3 };
const cocoDir = path.join(shared, 'coco', 'val2017');
const coco = await Promise.all(readdirSync(cocoDir).filter((f) => f.endsWith('.jpg')).sort().map((f) => decode(path.join(cocoDir, f))));

console.log(`imageToTensor to ${size}x${size}, ${runs} runs (node ${process.version}, ${process.arch})`);
console.log(`  640x480 stretch:   ${time([vgaImage], 'stretch')}`);
console.log(`  640x480 letterbox: ${time([vgaImage], 'letterbox')}`);
console.log(`  COCO (${coco.length} images) stretch: ${time(coco, 'stretch')}`);
