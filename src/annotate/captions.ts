/**
 * Where captions go: a pure function from boxes and caption sizes to caption rectangles, so that
 * in a crowded picture no caption hides another where there is room, every caption stays inside
 * the image, and the higher scores are drawn last (on top) where there is not.
 *
 * Captions are placed in order of score, highest first, each at the first free spot of:
 *   1. above the box (the usual place), 2. inside the box at its top, 3. below the box,
 *   4. inside the box at its bottom, 5. stacked further above, 6. stacked further below,
 *   7. further down inside the box, 8. anywhere in the box's column, nearest first;
 * each spot left-aligned with the box first, then right-aligned. Spots are shifted horizontally
 * to stay inside the image; spots that would leave it vertically are skipped. When no spot is
 * free the caption takes its first spot that fits and overlaps.
 *
 * @example
 * const rects = placeCaptions([{ box: [10, 40, 90, 120], width: 70, height: 12, score: 0.9 }], 640, 480);
 * // [{ left: 10, top: 28, width: 70, height: 12 }]
 */

/** A caption to place: the box's pixel rectangle (right and bottom exclusive) and the caption size. */
export interface CaptionItem {
  box: readonly [left: number, top: number, right: number, bottom: number];
  width: number;
  height: number;
  score: number;
}

/** A caption's rectangle in image pixels: [left, left + width) x [top, top + height). */
export interface CaptionRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** Levels tried when stacking captions above and below a box before searching its whole column. */
const STACK_LEVELS = 4;

/**
 * One rectangle per item, in the items' order. Pure: depends only on its arguments.
 */
export function placeCaptions(items: readonly CaptionItem[], imageWidth: number, imageHeight: number): CaptionRect[] {
  const placed: CaptionRect[] = [];
  const result: CaptionRect[] = new Array(items.length);
  for (const i of byScore(items, 'descending')) {
    const rect = placeOne(items[i]!, imageWidth, imageHeight, placed);
    result[i] = rect;
    placed.push(rect);
  }
  return result;
}

/** Indices of `items` in drawing order: lowest score first, so higher scores end up on top. */
export function captionDrawOrder(items: readonly { score: number }[]): number[] {
  return byScore(items, 'ascending');
}

/** True when two caption rectangles share at least one pixel. */
export function rectsOverlap(a: CaptionRect, b: CaptionRect): boolean {
  return a.left < b.left + b.width && b.left < a.left + a.width && a.top < b.top + b.height && b.top < a.top + a.height;
}

function byScore(items: readonly { score: number }[], order: 'ascending' | 'descending'): number[] {
  const sign = order === 'ascending' ? 1 : -1;
  // NaN scores sort as the lowest; ties keep the input order (Array.prototype.sort is stable).
  const key = (s: number) => (Number.isNaN(s) ? -Infinity : s);
  return items.map((_, i) => i).sort((a, b) => sign * (key(items[a]!.score) - key(items[b]!.score)) || 0);
}

function placeOne(item: CaptionItem, imageWidth: number, imageHeight: number, placed: readonly CaptionRect[]): CaptionRect {
  const { width, height } = item;
  const [left, top, right, bottom] = item.box;
  const xs = xChoices(left, right, width, imageWidth);
  const fits = (y: number) => y >= 0 && y + height <= imageHeight;
  let fallback: CaptionRect | undefined;
  const tryAt = (y: number): CaptionRect | undefined => {
    if (!fits(y)) return undefined;
    for (const x of xs) {
      const rect = { left: x, top: y, width, height };
      fallback ??= rect;
      if (!placed.some((p) => rectsOverlap(p, rect))) return rect;
    }
    return undefined;
  };

  const first = tryAt(top - height) ?? tryAt(top) ?? tryAt(bottom) ?? tryAt(bottom - height);
  if (first) return first;
  for (let k = 1; k <= STACK_LEVELS; k++) {
    const rect = tryAt(top - height * (k + 1));
    if (rect) return rect;
  }
  for (let k = 1; k <= STACK_LEVELS; k++) {
    const rect = tryAt(bottom + height * k);
    if (rect) return rect;
  }
  for (let y = top + height; y + height < bottom; y += height) {
    const rect = tryAt(y);
    if (rect) return rect;
  }
  // The whole column, nearest to the usual place first, including the positions between the
  // caption-height steps tried so far (half a caption apart).
  const step = Math.max(1, Math.floor(height / 2));
  const home = top - height;
  for (let d = step; d < imageHeight + Math.abs(home); d += step) {
    const rect = tryAt(home - d) ?? tryAt(home + d);
    if (rect) return rect;
  }
  // No free spot: overlap, at the first spot that fits (or pinned inside the image).
  return fallback ?? { left: xs[0]!, top: Math.max(0, Math.min(top, imageHeight - height)), width, height };
}

/** Left edges to try: aligned with the box's left, then its right; shifted to stay in the image. */
function xChoices(left: number, right: number, width: number, imageWidth: number): number[] {
  const clamp = (x: number) => Math.max(0, Math.min(x, imageWidth - width));
  const a = clamp(left);
  const b = clamp(right - width);
  return a === b ? [a] : [a, b];
}
