/**
 * The synthetic COCO-val-sized eval data of bench/eval-speed.js and the eval breakdown
 * (deterministic: the same files on every machine and run): `imageCount` images with about 7
 * ground-truth boxes each over the 80 COCO categories (1% crowds) and `detsPerImage` detections
 * per image (jittered copies of the ground truth and random boxes).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const round2 = (v) => Math.round(v * 100) / 100;

const COCO_IDS = [
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
  34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
  61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
];

function generate(imageCount, detsPerImage) {
  // A small LCG: the same data on every machine and run.
  let state = 0x2f6b3a1d;
  const random = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  const images = [];
  const annotations = [];
  const results = [];
  for (let i = 0; i < imageCount; i++) {
    const id = 100000 + i * 37;
    const width = 640;
    const height = 480;
    images.push({ id, file_name: `${String(id).padStart(12, '0')}.jpg`, width, height });
    // 0..14 boxes per image: 7 on average, like COCO val (36,781 boxes on 5,000 images).
    const gtHere = [];
    const n = Math.floor(random() * 15);
    for (let j = 0; j < n; j++) {
      // Sizes spread over small, medium and large.
      const w = round2(4 + random() ** 2 * 400);
      const h = round2(4 + random() ** 2 * 300);
      const x = round2(random() * (width - w));
      const y = round2(random() * (height - h));
      const box = { id: annotations.length + 1, image_id: id, category_id: COCO_IDS[Math.floor(random() * 80)],
        bbox: [x, y, w, h], area: round2(w * h * (0.5 + random() * 0.3)), iscrowd: random() < 0.01 ? 1 : 0 };
      annotations.push(box);
      gtHere.push(box);
    }
    for (let j = 0; j < detsPerImage; j++) {
      let bbox;
      let categoryId;
      if (gtHere.length > 0 && random() < 0.5) {
        const g = gtHere[Math.floor(random() * gtHere.length)];
        const jitter = () => 1 + (random() - 0.5) * 0.4;
        bbox = [round2(g.bbox[0] * jitter()), round2(g.bbox[1] * jitter()), round2(g.bbox[2] * jitter()), round2(g.bbox[3] * jitter())];
        categoryId = random() < 0.8 ? g.category_id : COCO_IDS[Math.floor(random() * 80)];
      } else {
        const w = round2(2 + random() * 300);
        const h = round2(2 + random() * 200);
        bbox = [round2(random() * (width - w)), round2(random() * (height - h)), w, h];
        categoryId = gtHere.length > 0 && random() < 0.5 ? gtHere[0].category_id : COCO_IDS[Math.floor(random() * 80)];
      }
      results.push({ image_id: id, category_id: categoryId, bbox, score: Math.round(random() * 1e6) / 1e6 });
    }
  }
  const categories = COCO_IDS.map((id) => ({ id, name: `category ${id}` }));
  return { gt: { images, annotations, categories }, results };
}


/** Writes instances.json and results.json into `dir`; returns their paths. */
export function writeEvalData(dir, { images = 5000, dets = 100 } = {}) {
  const gtFile = join(dir, 'instances.json');
  const resultsFile = join(dir, 'results.json');
  const { gt, results } = generate(images, dets);
  writeFileSync(gtFile, JSON.stringify(gt));
  writeFileSync(resultsFile, JSON.stringify(results));
  return { gtFile, resultsFile };
}
