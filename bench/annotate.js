// Times drawDetections on a video-sized frame: ms per frame for 20 captioned boxes.
//   npm run build && node bench/annotate.js [--frames N] [--width W --height H]
// Draws repeatedly on one decoded frame of ../shared/images/example.jpg (drawing over earlier
// drawings costs the same as on a clean frame). Timings on a busy machine are noisy: the median
// of several rounds is reported.
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { drawDetections } from '../dist/annotate/draw.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '2000' },
    width: { type: 'string', default: '768' },
    height: { type: 'string', default: '432' },
    rounds: { type: 'string', default: '7' },
  },
});
const frames = Number(values.frames);
const width = Number(values.width);
const height = Number(values.height);
const rounds = Number(values.rounds);

const examplePath = path.resolve(import.meta.dirname, '../../shared/images/example.jpg');
const { data } = await sharp(examplePath).resize(width, height, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const frame = { data, width, height, channels: 3 };

// 20 boxes of assorted sizes, classes and positions, some touching the edges, fixed so runs compare.
const LABELS = ['person', 'car', 'bicycle', 'dog', 'donut', 'dining table', 'cup', 'traffic light'];
const detections = Array.from({ length: 20 }, (_, i) => {
  const w = width * (0.08 + ((i * 37) % 30) / 100);
  const h = height * (0.1 + ((i * 53) % 40) / 100);
  const x1 = ((i * 131) % 100) / 100 * (width - w);
  const y1 = ((i * 71) % 100) / 100 * (height - h);
  return { label: LABELS[i % LABELS.length], classId: (i * 7) % 80, categoryId: 1, score: 0.4 + (i % 6) / 10, box: [x1, y1, x1 + w, y1 + h] };
});

for (let i = 0; i < 200; i++) drawDetections(frame, detections); // warm up the JIT

const msPerFrame = [];
for (let r = 0; r < rounds; r++) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < frames; i++) drawDetections(frame, detections);
  msPerFrame.push(Number(process.hrtime.bigint() - start) / 1e6 / frames);
}
msPerFrame.sort((a, b) => a - b);
const median = msPerFrame[Math.floor(msPerFrame.length / 2)];
console.log(
  `drawDetections ${width}x${height}, ${detections.length} boxes: ${median.toFixed(4)} ms/frame median ` +
    `(min ${msPerFrame[0].toFixed(4)}, max ${msPerFrame.at(-1).toFixed(4)}; ${rounds} rounds x ${frames} frames)`,
);
