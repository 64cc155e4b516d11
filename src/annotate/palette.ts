/**
 * Class colours for box outlines and caption backgrounds: 20 well separated colours, picked for
 * this package, indexed by classId (modulo 20), so one class keeps its colour in every frame.
 *
 * @example
 * const [r, g, b] = classColor(0);      // person: red
 * const text = textColorOn([r, g, b]);  // white or black, whichever reads better
 */

export type Rgb = readonly [number, number, number];

export const PALETTE: readonly Rgb[] = [
  [255, 56, 56], // red
  [255, 157, 40], // orange
  [255, 221, 0], // yellow
  [140, 220, 40], // lime
  [30, 180, 75], // green
  [0, 200, 170], // teal
  [0, 190, 255], // sky blue
  [40, 100, 255], // blue
  [120, 60, 230], // violet
  [210, 70, 230], // magenta
  [255, 90, 170], // pink
  [150, 90, 40], // brown
  [128, 128, 0], // olive
  [0, 128, 128], // dark teal
  [0, 70, 160], // navy
  [170, 0, 60], // crimson
  [255, 180, 150], // peach
  [180, 230, 160], // mint
  [170, 200, 255], // light blue
  [220, 180, 255], // lavender
];

export const BLACK: Rgb = [0, 0, 0];
export const WHITE: Rgb = [255, 255, 255];

/** The colour of a class; any number (negative, fractional, NaN) maps to some palette entry. */
export function classColor(classId: number): Rgb {
  const n = PALETTE.length;
  const index = Number.isFinite(classId) ? ((Math.floor(classId) % n) + n) % n : 0;
  return PALETTE[index]!;
}

/**
 * Black or white text for a background colour: black when the background is light. Uses the
 * Rec. 601 luma, which is cheap and close enough to perceived brightness for a binary choice.
 */
export function textColorOn(background: Rgb): Rgb {
  const luma = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2];
  return luma >= 150 ? BLACK : WHITE;
}
