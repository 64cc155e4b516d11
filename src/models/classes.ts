/**
 * Class names: the 80 COCO classes with their original category ids (1..90, with gaps) by
 * default, or a user's list for a fine-tuned model (`--class-names file`: one name a line, a JSON
 * array of names, or a JSON array of {id, name} / a {id: name} map in COCO's categories style).
 */
import { DeimError, errorMessage, isDeimError } from '../errors.js';
import { parseJsonBounded, readTextBoundedSync } from '../input/limits.js';

/** The largest class names file read (a million names of 16 characters). */
const MAX_CLASS_NAMES_BYTES = 16 * 1024 * 1024;

export interface ClassInfo {
  readonly names: readonly string[];
  /** Dataset category id of each class index. */
  readonly categoryIds: readonly number[];
}

export const COCO_CLASS_NAMES: readonly string[] = Object.freeze([
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
  'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
  'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
  'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
  'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
  'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
  'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
  'scissors', 'teddy bear', 'hair drier', 'toothbrush',
]);

/** COCO's original category ids of the 80 contiguous classes. */
export const COCO_CATEGORY_IDS: readonly number[] = Object.freeze([
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33,
  34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60,
  61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
]);

export const COCO_CLASSES: ClassInfo = Object.freeze({ names: COCO_CLASS_NAMES, categoryIds: COCO_CATEGORY_IDS });

/** Class names from a list (category ids 1..n) or a file. */
export function loadClassNames(source: string | readonly string[]): ClassInfo {
  if (Array.isArray(source)) return fromNames(source, '(class names array)');
  const file = source as string;
  let text: string;
  try {
    // Bounded: a class names file over 16 MiB, nested over 64 deep or binary is refused by name.
    text = readTextBoundedSync(file, { maxBytes: MAX_CLASS_NAMES_BYTES, label: `class names file ${file}` });
  } catch (e) {
    if (isDeimError(e) && e.code !== 'ERR_INPUT_NOT_FOUND' && e.code !== 'ERR_INPUT_UNREADABLE') throw e;
    throw new DeimError('ERR_CLASS_NAMES', `cannot read class names file ${file}: ${errorMessage(e)}`, { input: file, cause: e });
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('{')) {
    return fromJson(parseJsonBounded(trimmed, `class names file ${file}`, { code: 'ERR_CLASS_NAMES' }), file);
  }
  return fromNames(trimmed.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== ''), file);
}

function fromNames(names: readonly unknown[], where: string): ClassInfo {
  if (names.length === 0) throw new DeimError('ERR_CLASS_NAMES', `${where} holds no class names`, { input: where });
  names.forEach((n, i) => {
    if (typeof n !== 'string' || n === '') throw new DeimError('ERR_CLASS_NAMES', `${where}: class ${i} is not a non-empty string`, { input: where });
  });
  return { names: names as string[], categoryIds: names.map((_, i) => i + 1) };
}

function fromJson(json: unknown, file: string): ClassInfo {
  if (Array.isArray(json)) {
    if (json.every((e) => typeof e === 'string')) return fromNames(json, file);
    if (json.every((e) => e && typeof e === 'object' && typeof e.name === 'string' && Number.isInteger(e.id))) {
      return { names: json.map((e) => e.name as string), categoryIds: json.map((e) => e.id as number) };
    }
  } else if (json && typeof json === 'object') {
    const entries = Object.entries(json as Record<string, unknown>);
    if (entries.length > 0 && entries.every(([k, v]) => /^\d+$/.test(k) && typeof v === 'string')) {
      entries.sort((a, b) => Number(a[0]) - Number(b[0]));
      return { names: entries.map(([, v]) => v as string), categoryIds: entries.map(([k]) => Number(k)) };
    }
  }
  throw new DeimError('ERR_CLASS_NAMES', `class names file ${file}: expected a JSON array of names, an array of {id, name}, or an {"id": "name"} map`, { input: file });
}

/** Label for a class index, "class 93" when the list is shorter than the model's classes. */
export function classLabel(info: ClassInfo, classId: number): { label: string; categoryId: number } {
  const label = info.names[classId];
  return label === undefined ? { label: `class ${classId}`, categoryId: classId } : { label, categoryId: info.categoryIds[classId]! };
}
