// End-to-end preprocessing parity with the official pipeline over the COCO images of ../shared:
// the package's decode (dist/image/decode.js) + imageToTensor against Pillow's own decode + BILINEAR resize (run here with
// Debian's /usr/bin/python3 and its Pillow: apt-get install python3-pil).
//   npm run build && node scripts/resize-parity.js [--size 320] [--mode stretch|letterbox]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeBuffer, readImageFile } from '../dist/image/decode.js';
import { imageToTensor, tensorSize } from '../dist/image/tensor.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const shared = process.env.DEIMV2_SHARED ?? path.join(root, '..', 'shared');
const { values } = parseArgs({ options: { size: { type: 'string', default: '320' }, mode: { type: 'string', default: 'stretch' } } });
const size = Number(values.size);
const mode = values.mode;
const python = process.env.PYTHON ?? '/usr/bin/python3';

const cocoDir = path.join(shared, 'coco', 'val2017');
const files = readdirSync(cocoDir).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(cocoDir, f));
const pilDir = mkdtempSync(path.join(tmpdir(), 'deimv2-parity-'));
try {
  execFileSync(python, [path.join(root, 'scripts', 'make-resize-fixtures.py'), '--raw', pilDir, String(size), mode, ...files], { stdio: 'inherit' });
  const plane = size * size;
  const tensor = new Float32Array(tensorSize(size));
  let total = 0;
  let withinOne = 0;
  let exact = 0;
  let maxDiff = 0;
  let imagesDiffering = 0;
  for (const file of files) {
    const before = exact;
    imageToTensor(await decodeBuffer(await readImageFile(file), file), size, mode, 'none', tensor);
    const pil = readFileSync(path.join(pilDir, path.basename(file) + '.rgb'));
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(Math.round(tensor[c * plane + i] * 255) - pil[i * 3 + c]);
        if (d === 0) exact++;
        if (d <= 1) withinOne++;
        if (d > maxDiff) maxDiff = d;
        total++;
      }
    }
    if (exact - before !== plane * 3) imagesDiffering++;
  }
  const pct = (n) => ((100 * n) / total).toFixed(2);
  const label = mode === 'stretch' ? `${size}` : `${size} ${mode}`;
  console.log(`resize parity ${label}: ${pct(withinOne)}% of values within 1 of PIL (${pct(exact)}% exact, max diff ${maxDiff}) on ${files.length} images, ${imagesDiffering} not bit-exact`);
} finally {
  rmSync(pilDir, { recursive: true, force: true });
}
