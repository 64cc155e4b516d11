/**
 * `deimv2 eval --images`: one rule for images that cannot be scored. An entry whose file_name is
 * not a string, a file missing from the folder and an image that cannot be decoded are each left
 * out of the evaluation (their ground truth is not scored) and said; an unreadable image or a bad
 * entry makes the exit status 1; the run header and the JSON count the same images.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { deimv2 } from './helpers/cli.js';
import { COCO_ANNOTATIONS, COCO_IMAGES } from './helpers/paths.js';

it('unreadable images and entries without a file name are left out, said, and exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'deimv2-eval-rule-'));
  const imgs = join(dir, 'imgs');
  mkdirSync(imgs);
  const d = JSON.parse(readFileSync(COCO_ANNOTATIONS, 'utf8')) as { images: Array<{ id: number; file_name: unknown }>; annotations: Array<{ image_id: number }> };
  const ims = d.images.slice(0, 4).map((im) => ({ ...im }));
  for (const im of ims.slice(0, 3)) copyFileSync(join(COCO_IMAGES, im.file_name as string), join(imgs, im.file_name as string));
  writeFileSync(join(imgs, ims[1]!.file_name as string), Buffer.from([0xff, 0xd8, 1, 2, 3]));
  ims[3]!.file_name = 5;
  const ids = new Set(ims.map((im) => im.id));
  const gt = join(dir, 'gt.json');
  writeFileSync(gt, JSON.stringify({ ...d, images: ims, annotations: d.annotations.filter((a) => ids.has(a.image_id)) }));
  const r = await deimv2(['eval', '--annotations', gt, '--images', imgs, '--json', '--threads', '1']);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain('images[3]: "file_name" 5 is not a string: left out');
  expect(r.stderr).toContain('1 image(s) could not be read: they are left out of the evaluation');
  const doc = JSON.parse(r.stdout) as { images: number; run: string };
  expect(doc.images).toBe(2);
  expect(doc.run).toMatch(/: 2 image\(s\)/);
}, 60_000);
