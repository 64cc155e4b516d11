/**
 * Tracking overlays on a video frame: boxes coloured per track with "label #id score" captions,
 * trails, counting lines and zones with their counts. Boxes and captions go through
 * drawDetections (draw.ts); lines, polygons and labels are drawn here.
 *
 * @example
 * const tracked = session.update(frame, detections);
 * drawTracking(image, tracked, session);
 */
import type { Detection } from '../postprocess/types.js';
import type { TrackedFrame, TrackSession } from '../track/session.js';
import { drawDetections, lineWidthFor, type AnnotatableImage, type DrawOptions } from './draw.js';
import { CELL_WIDTH, GLYPH_HEIGHT, fontScaleFor, glyphPixel, textWidth } from './font.js';
import { classColor, textColorOn, type Rgb } from './palette.js';

const LINE_COLOR: Rgb = [255, 255, 255];
const ZONE_COLOR: Rgb = [255, 221, 0];

/** Colour of a track: the palette entry of its id (neighbouring ids get different colours). */
export function trackColor(trackId: number): Rgb {
  return classColor(trackId * 7);
}

/**
 * Draws a tracked frame: detections (tracked ones in their track's colour with "#id"), trails,
 * lines and zones with their current counts.
 */
export function drawTracking(image: AnnotatableImage, frame: TrackedFrame, session: TrackSession, options: DrawOptions = {}): void {
  const lineWidth = options.lineWidth ?? lineWidthFor(image.width, image.height);
  const scale = options.fontScale ?? fontScaleFor(image.width, image.height);
  // Zones and lines first, so that boxes and captions stay readable on top of them.
  for (const zone of session.zones) {
    const p = zone.points;
    for (let i = 0; i < p.length / 2; i++) {
      const j = (i + 1) % (p.length / 2);
      drawSegment(image, p[2 * i]!, p[2 * i + 1]!, p[2 * j]!, p[2 * j + 1]!, lineWidth, ZONE_COLOR);
    }
    const count = frame.counts?.zones[zone.name]?.count ?? 0;
    drawLabel(image, `${zone.name}: ${count}`, Math.min(...p.filter((_, k) => k % 2 === 0)), Math.min(...p.filter((_, k) => k % 2 === 1)), scale, ZONE_COLOR);
  }
  for (const line of session.lines) {
    const [x1, y1, x2, y2] = line.points;
    drawSegment(image, x1, y1, x2, y2, lineWidth, LINE_COLOR);
    const c = frame.counts?.lines[line.name];
    drawLabel(image, `${line.name} in ${c?.in ?? 0} out ${c?.out ?? 0}`, Math.min(x1, x2), Math.min(y1, y2), scale, LINE_COLOR);
  }
  for (const [id, trail] of session.trails) {
    const p = trail.points;
    const color = trackColor(id);
    for (let i = 2; i < p.length; i += 2) drawSegment(image, p[i - 2]!, p[i - 1]!, p[i]!, p[i + 1]!, Math.max(1, lineWidth - 1), color);
  }
  // drawDetections colours by classId: tracked detections pass their track's palette slot instead.
  const shown: Detection[] = frame.detections.map((d) => (d.trackId === undefined ? d : { ...d, classId: d.trackId * 7, label: `${d.label} #${d.trackId}` }));
  drawDetections(image, shown, options);
}

/** A straight segment `width` pixels thick (a square brush along Bresenham's line), clipped to the image. */
export function drawSegment(image: AnnotatableImage, xa: number, ya: number, xb: number, yb: number, width: number, color: Rgb): void {
  if (![xa, ya, xb, yb].every(Number.isFinite)) return;
  let x0 = Math.round(xa), y0 = Math.round(ya);
  const x1 = Math.round(xb), y1 = Math.round(yb);
  const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
  const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  let err = dx + dy;
  const half = Math.floor(width / 2);
  // A segment far outside would take long to walk for nothing.
  if (Math.max(dx, -dy) > 4 * (image.width + image.height)) return;
  for (;;) {
    fill(image, x0 - half, y0 - half, x0 - half + width, y0 - half + width, color);
    if (x0 === x1 && y0 === y1) break;
    const e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

/** Text on a filled background whose bottom-left corner is at (x, y), kept inside the image. */
function drawLabel(image: AnnotatableImage, text: string, x: number, y: number, scale: number, background: Rgb): void {
  const pad = 2 * scale;
  const w = textWidth(text, scale) + 2 * pad;
  const h = GLYPH_HEIGHT * scale + 2 * pad;
  let left = Math.round(Math.min(Math.max(x, 0), image.width - w));
  let top = Math.round(y - h);
  if (top < 0) top = Math.round(Math.max(y, 0));
  left = Math.max(left, 0);
  fill(image, left, top, left + w, top + h, background);
  const ink = textColorOn(background);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const cx = left + pad + i * CELL_WIDTH * scale;
    for (let row = 0; row < GLYPH_HEIGHT; row++) {
      for (let col = 0; col < CELL_WIDTH; col++) {
        if (glyphPixel(code, col, row)) fill(image, cx + col * scale, top + pad + row * scale, cx + (col + 1) * scale, top + pad + (row + 1) * scale, ink);
      }
    }
  }
}

function fill(image: AnnotatableImage, x0: number, y0: number, x1: number, y1: number, color: Rgb): void {
  const { data, width, height, channels } = image;
  const left = Math.max(x0, 0), right = Math.min(x1, width);
  const top = Math.max(y0, 0), bottom = Math.min(y1, height);
  for (let y = top; y < bottom; y++) {
    for (let x = left, i = (y * width + left) * channels; x < right; x++, i += channels) {
      data[i] = color[0];
      data[i + 1] = color[1];
      data[i + 2] = color[2];
      if (channels === 4) data[i + 3] = 255;
    }
  }
}
