/**
 * COCO ground truth and COCO results files, read into flat typed arrays.
 *
 * The semantics are pycocotools' (`COCO()` and `COCO.loadRes()`), the reference of the
 * COCO metrics: a ground-truth box keeps the `area` of its annotation (not w*h), its ignore
 * flag is its `iscrowd`, a detection's area is w*h and it is never a crowd. What pycocotools
 * would assert on or crash over (results for images that are not in the annotations, an empty
 * results list) is a DeimError 'ERR_EVAL_INPUT' here that names the file and the entry.
 *
 * @example
 * const gt = await readGroundTruth('instances_val2017.json');
 * const dt = await readResults('results.json', gt);
 */
import { DeimError } from '../errors.js';
import { decodeTextBounded, parseJsonBounded, readBytesBounded, readJsonBounded } from '../input/limits.js';
import { timeStage, timeStageAsync } from '../perf/stage-times.js';
import { parseResultsBytes } from './results-bytes.js';

/**
 * The most categories an evaluation takes (ERR_TOO_MANY_CATEGORIES beyond): pycocotools'
 * accumulate keeps a precision array of 10 x 101 x K x 4 x 3 doubles (97 kB a category), 199 MB
 * at 2,048 categories (LVIS has 1,203). A million took 12 GB and failed.
 */
export const MAX_CATEGORIES = 2048;
/** The most (image, category) pairs: the evaluation indexes every pair (COCO train2017: 9.5 M). */
export const MAX_IMAGE_CATEGORY_PAIRS = 2 ** 27;

/** One image entry of the annotations (the fields the evaluation and `eval --images` use). */
export interface CocoImage {
  id: number;
  fileName: string;
  width: number;
  height: number;
}

/** Boxes in structure-of-arrays form; entry j of every array is box j. */
export interface BoxArrays {
  count: number;
  /** Dense image index (position in GroundTruth.imageIds). */
  imageIndex: Uint32Array;
  /** Dense category index (position in GroundTruth.categoryIds). */
  categoryIndex: Uint32Array;
  /** x, y, w, h of box j at 4j..4j+3, as doubles (what maskApi's bbIou reads). */
  xywh: Float64Array;
  area: Float64Array;
}

export interface GroundTruth {
  /** The file (or label) the annotations came from, for messages. */
  source: string;
  /** Image ids in ascending order (pycocotools evaluates `sorted(getImgIds())`). */
  imageIds: number[];
  images: CocoImage[];
  imageIndexById: Map<number, number>;
  /** Category ids in ascending order. */
  categoryIds: number[];
  categoryNames: string[];
  categoryIndexById: Map<number, number>;
  boxes: BoxArrays & {
    /** Annotation id: pycocotools treats a match to annotation id 0 as no match. */
    annotationId: Float64Array;
    iscrowd: Uint8Array;
  };
}

export interface Detections extends BoxArrays {
  source: string;
  score: Float64Array;
}

/** Reads and validates a COCO instances file. */
export async function readGroundTruth(file: string): Promise<GroundTruth> {
  const json = await readJsonFile(file);
  return timeStage('eval: validate', () => parseGroundTruth(json, file));
}

/** Reads and validates a COCO results file against its ground truth. */
export async function readResults(file: string, gt: GroundTruth): Promise<Detections> {
  return parseResultsFile(await readResultsBytes(file), gt, file);
}

/**
 * A results file's bytes, with readJsonFile's checks on the file (missing, too large); the text
 * checks and the parse are parseResultsFile's.
 */
export async function readResultsBytes(file: string): Promise<Buffer> {
  return timeStageAsync('read', () => readBytesBounded(file));
}

/**
 * parseResults of a results file's bytes: as readJsonFile + parseResults give it (result and
 * errors), read straight from the bytes when the file has the plain shape (src/eval/results-bytes.ts).
 */
export function parseResultsFile(bytes: Buffer, gt: GroundTruth, source: string, options: { skipImageIds?: ReadonlySet<number> } = {}): Detections {
  const columns = timeStage('eval: parse results', () => parseResultsBytes(bytes, gt, options));
  if (columns !== undefined) return { source, ...columns };
  const json = parseResultsText(bytes, source);
  return timeStage('eval: validate', () => parseResults(json, gt, source, options));
}

/** The JSON of a results file's bytes, with readJsonFile's checks and errors (binary data, nesting, bad JSON). */
export function parseResultsText(bytes: Buffer, source: string): unknown {
  return timeStage('JSON parse', () => parseJsonBounded(decodeTextBounded(bytes, source), source, { code: 'ERR_EVAL_INPUT' }));
}

/** Reads and parses a JSON file; a missing file or bad JSON is a DeimError naming the file. */
export async function readJsonFile(file: string): Promise<unknown> {
  // Bounded: a file over INPUT_LIMITS.maxJsonBytes or nested deeper than maxJsonDepth is ERR_INPUT_TOO_LARGE.
  return timeStageAsync('JSON parse', () => readJsonBounded(file, { code: 'ERR_EVAL_INPUT' }));
}

function fail(source: string, message: string): never {
  throw new DeimError('ERR_EVAL_INPUT', `${source}: ${message}`, { input: source });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/**
 * `[x, y, w, h]` with finite numbers, or an error naming the entry. Ground truth needs w, h >= 0;
 * a result may have a negative side, as pycocotools' loadRes takes it (area w*h, IoU 0 with
 * everything: such a box never matches).
 */
function readBox(bbox: unknown, source: string, where: string, allowNegative = false): [number, number, number, number] {
  if (!Array.isArray(bbox) || bbox.length !== 4 || !bbox.every(finite)) {
    fail(source, `${where}: "bbox" must be [x, y, width, height] of 4 finite numbers, got ${JSON.stringify(bbox)}`);
  }
  if (!allowNegative && (bbox[2] < 0 || bbox[3] < 0)) {
    fail(source, `${where}: "bbox" has a negative width or height: ${JSON.stringify(bbox)}`);
  }
  return bbox as [number, number, number, number];
}

/** Validates a parsed COCO instances object; `source` names it in errors. */
export function parseGroundTruth(json: unknown, source: string): GroundTruth {
  if (!isRecord(json)) fail(source, 'a COCO annotations file must be a JSON object with "images", "categories" and "annotations"');
  const { images: rawImages, categories: rawCategories, annotations: rawAnnotations = [] } = json;
  if (!Array.isArray(rawImages)) fail(source, '"images" must be an array');
  if (!Array.isArray(rawCategories)) fail(source, '"categories" must be an array');
  if (!Array.isArray(rawAnnotations)) fail(source, '"annotations" must be an array');

  // Later duplicates replace earlier ones, as in pycocotools' dict index.
  const imageById = new Map<number, CocoImage>();
  rawImages.forEach((img, i) => {
    if (!isRecord(img) || !finite(img.id)) fail(source, `images[${i}]: needs a numeric "id"`);
    imageById.set(img.id, {
      id: img.id,
      fileName: typeof img.file_name === 'string' ? img.file_name : '',
      width: finite(img.width) ? img.width : 0,
      height: finite(img.height) ? img.height : 0,
    });
  });
  const nameById = new Map<number, string>();
  rawCategories.forEach((cat, i) => {
    if (!isRecord(cat) || !finite(cat.id)) fail(source, `categories[${i}]: needs a numeric "id"`);
    nameById.set(cat.id, typeof cat.name === 'string' ? cat.name : String(cat.id));
  });

  if (nameById.size > MAX_CATEGORIES) {
    throw new DeimError('ERR_TOO_MANY_CATEGORIES', `${source}: ${nameById.size} categories, over the evaluation's limit of ${MAX_CATEGORIES} (its precision table takes 97 kB a category)`, { input: source });
  }
  if (nameById.size * imageById.size > MAX_IMAGE_CATEGORY_PAIRS) {
    throw new DeimError('ERR_TOO_MANY_CATEGORIES', `${source}: ${imageById.size} images x ${nameById.size} categories, over the evaluation's limit of ${MAX_IMAGE_CATEGORY_PAIRS} (image, category) pairs`, { input: source });
  }
  const imageIds = [...imageById.keys()].sort((a, b) => a - b);
  const categoryIds = [...nameById.keys()].sort((a, b) => a - b);
  const imageIndexById = new Map(imageIds.map((id, i) => [id, i]));
  const categoryIndexById = new Map(categoryIds.map((id, i) => [id, i]));

  // pycocotools' createIndex reads ann['id'], ann['image_id'] and (with categories) ann['category_id']
  // of every annotation: a missing one is a KeyError there, an error naming the field here.
  // Its anns dict keeps the LAST annotation of an id, while imgToAnns keeps every one: getAnnIds
  // selects each annotation by its own image and category, and loadAnns then returns anns[id], so
  // every annotation of a duplicated id is scored as a copy of the last one of that id. Done so
  // here; the gts are in pycocotools' order (by image, then file order).
  const lastById = new Map<number, number>();
  const slots: number[] = [];
  rawAnnotations.forEach((ann: unknown, i) => {
    const where = `annotations[${i}]`;
    if (!isRecord(ann)) fail(source, `${where}: must be an object`);
    for (const field of ['id', 'image_id', 'category_id'] as const) {
      if (!finite(ann[field])) fail(source, `${where}: needs a numeric "${field}", got ${JSON.stringify(ann[field])}`);
    }
    // pycocotools takes int(iscrowd) and its truth as the ignore flag: only 0/1 (or booleans) mean one thing in both.
    if (ann.iscrowd !== undefined && ann.iscrowd !== 0 && ann.iscrowd !== 1 && typeof ann.iscrowd !== 'boolean') {
      fail(source, `${where}: "iscrowd" must be 0 or 1, got ${JSON.stringify(ann.iscrowd)}`);
    }
    lastById.set(ann.id as number, i);
    if (imageIndexById.has(ann.image_id as number) && categoryIndexById.has(ann.category_id as number)) slots.push(i);
  });
  // Stable: by the selecting annotation's image, file order within it.
  slots.sort((a, b) => imageIndexById.get((rawAnnotations[a] as Record<string, number>).image_id!)! - imageIndexById.get((rawAnnotations[b] as Record<string, number>).image_id!)!);

  const n = slots.length;
  const boxes = {
    count: 0,
    imageIndex: new Uint32Array(n),
    categoryIndex: new Uint32Array(n),
    xywh: new Float64Array(4 * n),
    area: new Float64Array(n),
    annotationId: new Float64Array(n),
    iscrowd: new Uint8Array(n),
  };
  for (const slot of slots) {
    const i = lastById.get((rawAnnotations[slot] as Record<string, number>).id!)!;
    const ann = rawAnnotations[i] as Record<string, unknown>;
    const where = `annotations[${i}]`;
    const imageIndex = imageIndexById.get(ann.image_id as number);
    const categoryIndex = categoryIndexById.get(ann.category_id as number);
    // pycocotools' getAnnIds(imgIds, catIds) never returns these: they take no part (and a copy
    // keyed to an image or category outside the evaluation is never read).
    if (imageIndex === undefined || categoryIndex === undefined) continue;
    const [x, y, w, h] = readBox(ann.bbox, source, where);
    if (!finite(ann.area)) fail(source, `${where}: needs a numeric "area"`);
    const j = boxes.count++;
    boxes.imageIndex[j] = imageIndex;
    boxes.categoryIndex[j] = categoryIndex;
    boxes.xywh.set([x, y, w, h], 4 * j);
    boxes.area[j] = ann.area;
    boxes.annotationId[j] = ann.id as number;
    // pycocotools reads `iscrowd` as the ignore flag; a missing one (a KeyError there) is 0 here.
    boxes.iscrowd[j] = ann.iscrowd ? 1 : 0;
  }

  return {
    source,
    imageIds,
    images: imageIds.map((id) => imageById.get(id)!),
    imageIndexById,
    categoryIds,
    categoryNames: categoryIds.map((id) => nameById.get(id)!),
    categoryIndexById,
    boxes,
  };
}

/**
 * Validates a parsed COCO results list (`[{image_id, category_id, bbox, score}]`) against the
 * ground truth. Results are kept in file order: it decides ties in score, as in pycocotools.
 * Results for `skipImageIds` (images of the annotations left out of this evaluation, as with
 * pycocotools' params.imgIds) are passed over.
 */
export function parseResults(json: unknown, gt: GroundTruth, source: string, options: { skipImageIds?: ReadonlySet<number> } = {}): Detections {
  if (!Array.isArray(json)) fail(source, 'a COCO results file must be a JSON array of {image_id, category_id, bbox, score}');
  const n = json.length;
  // pycocotools' loadRes fails on an empty list (it reads anns[0]); say what is wrong instead.
  if (n === 0) fail(source, 'the results list is empty: there are no detections to evaluate');
  const dt: Detections = {
    source,
    count: 0,
    imageIndex: new Uint32Array(n),
    categoryIndex: new Uint32Array(n),
    xywh: new Float64Array(4 * n),
    area: new Float64Array(n),
    score: new Float64Array(n),
  };
  for (let i = 0; i < n; i++) {
    const r: unknown = json[i];
    const where = `entry ${i}`;
    if (!isRecord(r)) fail(source, `${where}: must be an object {image_id, category_id, bbox, score}`);
    const imageIndex = gt.imageIndexById.get(r.image_id as number);
    if (imageIndex === undefined && options.skipImageIds?.has(r.image_id as number)) continue;
    if (imageIndex === undefined) {
      // pycocotools: "Results do not correspond to current coco set".
      fail(source, `${where}: image_id ${JSON.stringify(r.image_id)} is not an image of ${gt.source} (results do not correspond to these annotations)`);
    }
    const categoryIndex = gt.categoryIndexById.get(r.category_id as number);
    if (categoryIndex === undefined) {
      fail(source, `${where}: category_id ${JSON.stringify(r.category_id)} is not a category of ${gt.source} (COCO results use the dataset's category ids, e.g. 1..90, not class indices 0..79)`);
    }
    const [x, y, w, h] = readBox(r.bbox, source, where, true);
    if (!finite(r.score)) fail(source, `${where}: needs a finite numeric "score", got ${JSON.stringify(r.score)}`);
    const j = dt.count++;
    dt.imageIndex[j] = imageIndex;
    dt.categoryIndex[j] = categoryIndex;
    const o = 4 * j;
    dt.xywh[o] = x;
    dt.xywh[o + 1] = y;
    dt.xywh[o + 2] = w;
    dt.xywh[o + 3] = h;
    dt.area[j] = w * h;
    dt.score[j] = r.score;
  }
  return dt;
}
