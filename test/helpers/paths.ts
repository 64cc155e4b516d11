/** Where the tests find the shared data and models. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SHARED = path.resolve(ROOT, '..', 'shared');
export const MODEL_DIR = process.env.DEIMV2_MODEL_DIR ? path.resolve(process.env.DEIMV2_MODEL_DIR) : path.join(SHARED, 'models');
export const ATTO = path.join(MODEL_DIR, 'deimv2_hgnetv2_atto_coco.onnx');
export const FEMTO = path.join(MODEL_DIR, 'deimv2_hgnetv2_femto_coco.onnx');
export const EXAMPLE = path.join(ROOT, 'examples', 'example.jpg');
export const COCO_IMAGES = path.join(SHARED, 'coco', 'val2017');
export const COCO_ANNOTATIONS = path.join(SHARED, 'coco', 'annotations', 'instances_val2017.json');
export const REFERENCE = path.join(SHARED, 'reference');
export const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

if (!existsSync(SHARED)) throw new Error(`the shared data folder ${SHARED} is missing: tests read models and images from ../shared`);
