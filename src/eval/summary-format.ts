/**
 * The text pycocotools prints: its 12-line summary, character for character, and a per-class
 * table.
 *
 * @example
 * console.log(formatSummary(evaluateCoco(gt, dt).lines));
 * //  Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.290
 */
import type { SummaryLine } from './cocoeval.js';

/**
 * Python's '{:0.3f}'.format(x). JavaScript's toFixed rounds an exact tie up, Python to the
 * even digit; a tie is only possible for doubles that are odd multiples of 1/16 (0.0625...).
 */
export function formatFixed3(x: number): string {
  const scaled = x * 16;
  if (Number.isInteger(scaled) && scaled % 2 !== 0) {
    const below = Math.floor(x * 1000);
    const digits = below % 2 === 0 ? below : below + 1;
    return (digits / 1000).toFixed(3);
  }
  return x.toFixed(3);
}

/** One line: ' {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}'. */
export function formatSummaryLine(line: SummaryLine, iouRange = '0.50:0.95'): string {
  const title = line.kind === 'AP' ? 'Average Precision' : 'Average Recall';
  const type = line.kind === 'AP' ? '(AP)' : '(AR)';
  const iou = line.iouThreshold === null ? iouRange : line.iouThreshold.toFixed(2);
  return ` ${title.padEnd(18)} ${type} @[ IoU=${iou.padEnd(9)} | area=${line.area.padStart(6)} | maxDets=${String(line.maxDets).padStart(3)} ] = ${formatFixed3(line.value)}`;
}

/** The 12 lines of pycocotools' COCOeval.summarize(), joined with newlines. */
export function formatSummary(lines: SummaryLine[]): string {
  return lines.map((l) => formatSummaryLine(l)).join('\n');
}

/** A per-class table: name, AP, AP50; '-' for classes with no ground truth. */
export function formatPerClass(rows: { name: string; ap: number; ap50: number }[]): string {
  const width = Math.max(8, ...rows.map((r) => r.name.length));
  const cell = (v: number) => (v < 0 ? '-' : formatFixed3(v)).padStart(6);
  const header = `${'category'.padEnd(width)}     AP   AP50`;
  return [header, ...rows.map((r) => `${r.name.padEnd(width)} ${cell(r.ap)} ${cell(r.ap50)}`)].join('\n');
}
