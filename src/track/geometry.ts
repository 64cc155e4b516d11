/**
 * Counting lines and zones: parsing `x1,y1,x2,y2[:name]` and `x1,y1,x2,y2,x3,y3,...[:name]`,
 * checking them, and the geometry they need (side of a line, segment crossing, point in polygon).
 */
import { DeimError } from '../errors.js';

/**
 * Bounds of one run's counting geometry: checking a zone is quadratic in its points (edge pairs
 * must not cross) and counting costs lines + zones per track and frame, so a 20,000-point zone
 * took 6 s to check and a 4 MB config's 200,000 could take hours.
 */
export const GEOMETRY_LIMITS = { maxLines: 100, maxZones: 100, maxZonePoints: 1000 } as const;

/** A spec as shown in messages: at most 60 characters (a spec may be megabytes long). */
function quoted(spec: string): string {
  return JSON.stringify(spec.length > 60 ? `${spec.slice(0, 57)}...` : spec);
}

export interface CountLine {
  name: string;
  /** x1, y1, x2, y2 in frame pixels. */
  points: [number, number, number, number];
}

export interface Zone {
  name: string;
  /** Polygon vertices, x, y pairs in frame pixels (at least 3, not self-intersecting). */
  points: number[];
}

function parseNumbers(spec: string, what: string): { values: number[]; name: string | undefined } {
  if (typeof spec !== 'string') throw new DeimError('ERR_INVALID_ARGUMENT', `${what} must be a string like "x1,y1,x2,y2[:name]", got ${quoted(String(JSON.stringify(spec)))}`, { input: String(spec).slice(0, 200) });
  const colon = spec.indexOf(':');
  const coords = colon >= 0 ? spec.slice(0, colon) : spec;
  const name = colon >= 0 ? spec.slice(colon + 1).trim() : undefined;
  // A zone of at most maxZonePoints points has 2x that many numbers; more are refused before they are split.
  let commas = 0;
  for (let i = coords.indexOf(','); i >= 0 && commas < 2 * GEOMETRY_LIMITS.maxZonePoints; i = coords.indexOf(',', i + 1)) commas++;
  if (commas >= 2 * GEOMETRY_LIMITS.maxZonePoints) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `${what} ${quoted(spec)}: more than ${GEOMETRY_LIMITS.maxZonePoints} points, the limit of a zone`, { input: spec.slice(0, 200) });
  }
  const parts = coords.split(',').map((s) => s.trim());
  const values = parts.map((s) => (s === '' ? NaN : Number(s)));
  const bad = parts.find((_, i) => !Number.isFinite(values[i]!));
  if (bad !== undefined) throw new DeimError('ERR_INVALID_ARGUMENT', `${what} ${quoted(spec)}: ${quoted(bad)} is not a number`, { input: spec.slice(0, 200) });
  if (name === '') throw new DeimError('ERR_INVALID_ARGUMENT', `${what} ${quoted(spec)}: the name after ":" is empty`, { input: spec.slice(0, 200) });
  return { values, name };
}

/** Parses "x1,y1,x2,y2[:name]" (pixels). Throws ERR_INVALID_ARGUMENT naming the spec. */
export function parseLine(spec: string, index = 0): CountLine {
  const { values, name } = parseNumbers(spec, '--line');
  if (values.length !== 4) throw new DeimError('ERR_INVALID_ARGUMENT', `--line ${quoted(spec)}: needs exactly 4 numbers x1,y1,x2,y2, got ${values.length}`, { input: spec.slice(0, 200) });
  if (values[0] === values[2] && values[1] === values[3]) throw new DeimError('ERR_INVALID_ARGUMENT', `--line ${quoted(spec)}: its two ends are the same point`, { input: spec.slice(0, 200) });
  return { name: name ?? `line${index + 1}`, points: values as [number, number, number, number] };
}

/** Parses "x1,y1,x2,y2,x3,y3,...[:name]" (pixels): a simple polygon of 3 or more points. */
export function parseZone(spec: string, index = 0): Zone {
  const { values, name } = parseNumbers(spec, '--zone');
  if (values.length < 6 || values.length % 2 !== 0) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `--zone ${quoted(spec)}: needs at least 3 points as x,y pairs (6 or more numbers, an even count), got ${values.length} numbers`, { input: spec.slice(0, 200) });
  }
  const problem = polygonProblem(values);
  if (problem) throw new DeimError('ERR_INVALID_ARGUMENT', `--zone ${quoted(spec)}: not a simple polygon: ${problem}`, { input: spec.slice(0, 200) });
  return { name: name ?? `zone${index + 1}`, points: values };
}

/** Checks a line or zone given as an object (API). */
export function checkLine(l: CountLine, index: number): CountLine {
  if (!l || !Array.isArray(l.points)) throw new DeimError('ERR_INVALID_ARGUMENT', `line ${index + 1} must be { name, points: [x1, y1, x2, y2] }`);
  return parseLine(`${l.points.join(',')}${l.name !== undefined ? `:${l.name}` : ''}`, index);
}

export function checkZone(z: Zone, index: number): Zone {
  if (!z || !Array.isArray(z.points)) throw new DeimError('ERR_INVALID_ARGUMENT', `zone ${index + 1} must be { name, points: [x1, y1, x2, y2, x3, y3, ...] }`);
  return parseZone(`${z.points.join(',')}${z.name !== undefined ? `:${z.name}` : ''}`, index);
}

function orient(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): number {
  const v = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
  return v > 0 ? 1 : v < 0 ? -1 : 0;
}

function onSegment(ax: number, ay: number, bx: number, by: number, cx: number, cy: number): boolean {
  return Math.min(ax, bx) <= cx && cx <= Math.max(ax, bx) && Math.min(ay, by) <= cy && cy <= Math.max(ay, by);
}

/** True when segments ab and cd share a point (touching included). */
export function segmentsIntersect(ax: number, ay: number, bx: number, by: number, cx: number, cy: number, dx: number, dy: number): boolean {
  const o1 = orient(ax, ay, bx, by, cx, cy);
  const o2 = orient(ax, ay, bx, by, dx, dy);
  const o3 = orient(cx, cy, dx, dy, ax, ay);
  const o4 = orient(cx, cy, dx, dy, bx, by);
  if (o1 !== o2 && o3 !== o4) return true;
  if (o1 === 0 && onSegment(ax, ay, bx, by, cx, cy)) return true;
  if (o2 === 0 && onSegment(ax, ay, bx, by, dx, dy)) return true;
  if (o3 === 0 && onSegment(cx, cy, dx, dy, ax, ay)) return true;
  if (o4 === 0 && onSegment(cx, cy, dx, dy, bx, by)) return true;
  return false;
}

/** Why `p` (flat x, y pairs) is not a simple polygon, or undefined when it is. */
export function polygonProblem(p: number[]): string | undefined {
  const n = p.length / 2;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (p[2 * i] === p[2 * j] && p[2 * i + 1] === p[2 * j + 1]) return `points ${i + 1} and ${j + 1} are the same`;
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      // Adjacent edges share a vertex; only non-adjacent ones may not meet.
      if (j === i + 1 || (i === 0 && j === n - 1)) continue;
      const a = i, b = (i + 1) % n, c = j, d = (j + 1) % n;
      if (segmentsIntersect(p[2 * a]!, p[2 * a + 1]!, p[2 * b]!, p[2 * b + 1]!, p[2 * c]!, p[2 * c + 1]!, p[2 * d]!, p[2 * d + 1]!)) {
        return `edge ${a + 1}-${b + 1} crosses edge ${c + 1}-${d + 1}`;
      }
    }
  }
  let area2 = 0;
  for (let i = 0; i < n; i++) {
    const j = (i + 1) % n;
    area2 += p[2 * i]! * p[2 * j + 1]! - p[2 * j]! * p[2 * i + 1]!;
  }
  if (area2 === 0) return 'its area is zero (all points on one line)';
  return undefined;
}

/** Point in polygon (even-odd rule; points on the boundary may fall either way). */
export function insidePolygon(p: readonly number[], x: number, y: number): boolean {
  let inside = false;
  const n = p.length / 2;
  for (let i = 0, j = n - 1; i < n; j = i++) {
    const xi = p[2 * i]!, yi = p[2 * i + 1]!, xj = p[2 * j]!, yj = p[2 * j + 1]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Which side of the line a point is on: 1, -1, or 0 on the line (its infinite extension). */
export function sideOf(l: CountLine, x: number, y: number): number {
  const [x1, y1, x2, y2] = l.points;
  return orient(x1, y1, x2, y2, x, y);
}
