/**
 * Draws detections on an interleaved RGB/RGBA buffer in place: class-coloured box outlines and a
 * filled caption ("person 0.87") per box, placed by ./captions.ts so captions do not cover each
 * other. Built to run once per video frame: it allocates only the small caption layout per call,
 * and touches only the pixels it paints.
 *
 * @example
 * const { data, info } = await sharp('a.jpg').raw().toBuffer({ resolveWithObject: true });
 * drawDetections({ data, width: info.width, height: info.height, channels: 3 }, result.detections);
 */
import { DeimError } from '../errors.js';
import { timeStage } from '../perf/stage-times.js';
import type { Detection } from '../postprocess/types.js';
import { CELL_WIDTH, FONT_ROWS, GLYPH_HEIGHT, GLYPH_WIDTH, fontScaleFor, glyphRowsOffset, textWidth } from './font.js';
import { captionDrawOrder, placeCaptions, type CaptionItem, type CaptionRect } from './captions.js';
import { classColor, textColorOn, type Rgb } from './palette.js';

/** An interleaved 8-bit image that is drawn on in place (alpha, if any, is set opaque where drawn). */
export interface AnnotatableImage {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
}

export interface DrawOptions {
  /** Outline thickness in pixels; default from the image size (see lineWidthFor). */
  lineWidth?: number;
  /** Integer font scale (1 = 5x9-pixel glyphs); default from the image size (see fontScaleFor). */
  fontScale?: number;
  /** Append the score with two decimals to the caption (default true). */
  showScore?: boolean;
  /** Caption text for a detection (default: its label). An empty caption draws none. */
  labelFor?: (detection: Detection) => string;
}

/** Outline thickness for an image: round(short side / 250), at least 1 (2 px at 480p, 4 at 1080p). */
export function lineWidthFor(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 250));
}

// Caption padding around the text, in font pixels (multiplied by the font scale). More room above
// than below because the glyph cell already ends with two descender rows.
const CAPTION_PAD_X = 2;
const CAPTION_PAD_TOP = 2;
const CAPTION_PAD_BOTTOM = 1;

// The pixel rectangle of the box being drawn (left, top, right, bottom; right/bottom exclusive).
// One module-level scratch array instead of an object per box: drawing is synchronous, so no
// two calls can share it at once.
const rect = new Float64Array(4);

/** A caption as drawn: the detection it belongs to (index into the detections), its text and rectangle. */
export interface CaptionLayout extends CaptionRect {
  index: number;
  text: string;
}

/**
 * Draws every detection on `image` in place. Boxes with NaN, infinite or inverted coordinates
 * are skipped; boxes partly outside the image are clipped; boxes wholly outside draw nothing.
 * Outlines are drawn inside the box, so a box clipped to the image stays fully visible.
 * All outlines are drawn before any caption so that no outline crosses a caption's text.
 * Captions are placed by layoutCaptions: not over each other where there is room, inside the
 * image, higher scores drawn last.
 */
export function drawDetections(image: AnnotatableImage, detections: readonly Detection[], options: DrawOptions = {}): void {
  timeStage('draw', () => drawNow(image, detections, options));
}

function drawNow(image: AnnotatableImage, detections: readonly Detection[], options: DrawOptions): void {
  checkImage(image);
  const lineWidth = positiveInteger(options.lineWidth, 'lineWidth') ?? lineWidthFor(image.width, image.height);
  const fontScale = positiveInteger(options.fontScale, 'fontScale') ?? fontScaleFor(image.width, image.height);

  for (let i = 0; i < detections.length; i++) {
    const detection = detections[i]!;
    if (!boxToRect(detection, image.width, image.height)) continue;
    drawOutline(image, rect[0]!, rect[1]!, rect[2]!, rect[3]!, lineWidth, classColor(detection.classId));
  }
  for (const caption of captionLayout(image.width, image.height, detections, fontScale, options)) {
    const background = classColor(detections[caption.index]!.classId);
    fillRect(image, caption.left, caption.top, caption.left + caption.width, caption.top + caption.height, background);
    drawText(image, caption.text, caption.left + CAPTION_PAD_X * fontScale, caption.top + CAPTION_PAD_TOP * fontScale, fontScale, textColorOn(background));
  }
}

/**
 * Where drawDetections puts each caption, without drawing: pure, from the image size, the
 * detections and the same options. Returned in drawing order (lowest score first); detections
 * that draw no caption (invalid or off-image box, empty caption) are absent.
 *
 * @example
 * const captions = layoutCaptions({ width: 640, height: 480 }, result.detections);
 * // [{ index: 3, text: 'person 0.41', left: 12, top: 80, width: 70, height: 12 }, ...]
 */
export function layoutCaptions(image: { width: number; height: number }, detections: readonly Detection[], options: DrawOptions = {}): CaptionLayout[] {
  const { width, height } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected positive integer image width and height but received ${width}x${height}`);
  }
  const fontScale = positiveInteger(options.fontScale, 'fontScale') ?? fontScaleFor(width, height);
  return captionLayout(width, height, detections, fontScale, options);
}

function captionLayout(width: number, height: number, detections: readonly Detection[], fontScale: number, options: DrawOptions): CaptionLayout[] {
  const showScore = options.showScore ?? true;
  const captionHeight = (GLYPH_HEIGHT + CAPTION_PAD_TOP + CAPTION_PAD_BOTTOM) * fontScale;
  const items: CaptionItem[] = [];
  const texts: string[] = [];
  const indices: number[] = [];
  for (let i = 0; i < detections.length; i++) {
    const detection = detections[i]!;
    if (!boxToRect(detection, width, height)) continue;
    const label = options.labelFor ? options.labelFor(detection) : detection.label;
    const text = showScore ? (label ? `${label} ${detection.score.toFixed(2)}` : detection.score.toFixed(2)) : label;
    if (!text) continue;
    items.push({
      box: [rect[0]!, rect[1]!, rect[2]!, rect[3]!],
      width: textWidth(text, fontScale) + 2 * CAPTION_PAD_X * fontScale,
      height: captionHeight,
      score: detection.score,
    });
    texts.push(text);
    indices.push(i);
  }
  const rects = placeCaptions(items, width, height);
  return captionDrawOrder(items).map((k) => ({ index: indices[k]!, text: texts[k]!, ...rects[k]! }));
}

/** Fills `rect` with the detection's pixel rectangle; false when it is invalid or off the image. */
function boxToRect(detection: Detection, width: number, height: number): boolean {
  const box = detection.box;
  const x1 = box[0];
  const y1 = box[1];
  const x2 = box[2];
  const y2 = box[3];
  // `!(a <= b)` is also true when either is NaN.
  if (!(x1 <= x2) || !(y1 <= y2) || !Number.isFinite(x1 + y1 + x2 + y2)) return false;
  const left = Math.round(x1);
  const top = Math.round(y1);
  // A box thinner than a pixel still gets a one-pixel line.
  const right = Math.max(Math.round(x2), left + 1);
  const bottom = Math.max(Math.round(y2), top + 1);
  if (right <= 0 || bottom <= 0 || left >= width || top >= height) return false;
  rect[0] = left;
  rect[1] = top;
  rect[2] = right;
  rect[3] = bottom;
  return true;
}

function drawOutline(image: AnnotatableImage, left: number, top: number, right: number, bottom: number, lineWidth: number, color: Rgb): void {
  fillRect(image, left, top, right, Math.min(top + lineWidth, bottom), color);
  fillRect(image, left, Math.max(bottom - lineWidth, top), right, bottom, color);
  fillRect(image, left, top, Math.min(left + lineWidth, right), bottom, color);
  fillRect(image, Math.max(right - lineWidth, left), top, right, bottom, color);
}

/** Draws `text` with its top-left glyph corner at (x, y), each font pixel as a scale x scale block. */
function drawText(image: AnnotatableImage, text: string, x: number, y: number, scale: number, color: Rgb): void {
  let cellX = x;
  for (let i = 0; i < text.length && cellX < image.width; i++, cellX += CELL_WIDTH * scale) {
    const rows = glyphRowsOffset(text.charCodeAt(i));
    for (let row = 0; row < GLYPH_HEIGHT; row++) {
      const bits = FONT_ROWS[rows + row]!;
      if (bits === 0) continue;
      const py = y + row * scale;
      for (let column = 0; column < GLYPH_WIDTH; column++) {
        if ((bits >> (GLYPH_WIDTH - 1 - column)) & 1) {
          const px = cellX + column * scale;
          fillRect(image, px, py, px + scale, py + scale, color);
        }
      }
    }
  }
}

/** Paints [x0, x1) x [y0, y1), clipped to the image; alpha (4 channels) becomes opaque. */
function fillRect(image: AnnotatableImage, x0: number, y0: number, x1: number, y1: number, color: Rgb): void {
  const { data, width, channels } = image;
  const left = Math.max(x0, 0);
  const right = Math.min(x1, width);
  const top = Math.max(y0, 0);
  const bottom = Math.min(y1, image.height);
  if (left >= right || top >= bottom) return;
  const rowBytes = (right - left) * channels;
  const firstRow = (top * width + left) * channels;
  // Wide rectangles (caption backgrounds, horizontal edges): paint the first row, then copy it
  // down with copyWithin (a native memmove), several times faster than per-pixel stores.
  if (rowBytes >= WIDE_ROW_BYTES && bottom - top > 1) {
    fillRow(data, firstRow, firstRow + rowBytes, channels, color);
    const stride = width * channels;
    for (let y = top + 1, start = firstRow + stride; y < bottom; y++, start += stride) {
      data.copyWithin(start, firstRow, firstRow + rowBytes);
    }
    return;
  }
  for (let y = top, start = firstRow; y < bottom; y++, start += width * channels) {
    fillRow(data, start, start + rowBytes, channels, color);
  }
}

// Below this row length a copyWithin call costs more than the stores it replaces (measured with
// bench/annotate.js).
const WIDE_ROW_BYTES = 64;

function fillRow(data: Uint8Array, start: number, end: number, channels: 3 | 4, color: Rgb): void {
  const r = color[0];
  const g = color[1];
  const b = color[2];
  if (channels === 4) {
    for (let i = start; i < end; i += 4) {
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
      data[i + 3] = 255;
    }
  } else {
    for (let i = start; i < end; i += 3) {
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
    }
  }
}

function checkImage(image: AnnotatableImage): void {
  const { data, width, height, channels } = image;
  if (!(data instanceof Uint8Array)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a Uint8Array for image.data but received ${typeName(data)}`);
  }
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected positive integer image width and height but received ${width}x${height}`);
  }
  if (channels !== 3 && channels !== 4) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected 3 or 4 for image.channels but received ${String(channels)}`);
  }
  if (data.length < width * height * channels) {
    throw new DeimError(
      'ERR_INVALID_ARGUMENT',
      `Expected at least ${width * height * channels} bytes of image data for ${width}x${height}x${channels} but received ${data.length}`,
    );
  }
}

function positiveInteger(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected a positive integer for ${name} but received ${String(value)} of type ${typeof value}`);
  }
  return value;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return (value as object).constructor?.name ?? 'object';
  return typeof value;
}
