/**
 * Equality with the reference ByteTrack (ifzhang/ByteTrack with lap's lapjv), frame by frame and
 * box by box: ids, boxes, scores, classes. Fixtures: scripts/make-track-fixtures.py (real
 * detections of ../shared/videos at 30, 30.303 and 12.5 FPS; synthetic sequences with crossings,
 * occlusions and low-score phases; people close to the camera: large fast-changing boxes over the
 * frame's edges, clipped or not, lost and found at the edge of the track buffer, duplicate boxes,
 * at 30, 30.303, 29.97, 12.5 and 7.5 FPS; a crowd with exact duplicate boxes, where assignments tie).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ByteTracker, type Track } from '../src/track/index.js';
import { ROOT } from './helpers/paths.js';

const DIR = path.join(ROOT, 'test', 'fixtures', 'track');
const BOX_TOL = 2e-4; // fixture boxes are rounded to 1e-4 px

interface Header { sequence: string; frameRate: number; frames: number; detsFrom?: string }
interface Frame { frame: number; dets: number[][]; tracks: number[][]; agnostic: number[][] }

function load(file: string): { header: Header; frames: Frame[] } {
  const lines = readFileSync(path.join(DIR, file), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const header = lines[0] as Header;
  const frames = lines.slice(1) as Frame[];
  if (header.detsFrom) {
    // The same detections as another fixture, run at another frame rate.
    const source = load(header.detsFrom).frames;
    frames.forEach((f, i) => (f.dets = source[i]!.dets));
  }
  return { header, frames };
}

function compare(frames: Frame[], frameRate: number, agnostic: boolean) {
  const tracker = new ByteTracker({ frameRate, agnostic });
  const figures = { frames: 0, boxes: 0, ids: new Set<number>(), differing: 0, differingBoxes: 0, otherIds: 0, maxBoxDiff: 0, mismatches: [] as string[] };
  for (const f of frames) {
    const dets = f.dets.map(([classId, score, x1, y1, x2, y2]) => ({ classId: classId!, score: score!, box: [x1!, y1!, x2!, y2!] }));
    const got = tracker.update(dets);
    const want = (agnostic ? f.agnostic : f.tracks).map((r) => (agnostic ? { id: r[0]!, cls: undefined, tlwh: r.slice(1, 5), score: r[5]! } : { id: r[0]!, cls: r[1], tlwh: r.slice(2, 6), score: r[6]! }));
    figures.frames++;
    let differs = got.length !== want.length;
    for (let i = 0; i < Math.max(got.length, want.length); i++) {
      const g: Track | undefined = got[i];
      const w = want[i];
      if (!g || !w) {
        figures.differingBoxes++;
        continue;
      }
      figures.boxes++;
      figures.ids.add(w.id);
      const tlwh = [g.box[0], g.box[1], g.box[2] - g.box[0], g.box[3] - g.box[1]];
      const diff = Math.max(...tlwh.map((v, k) => Math.abs(v - w.tlwh[k]!)));
      figures.maxBoxDiff = Math.max(figures.maxBoxDiff, diff);
      if (g.trackId !== w.id) figures.otherIds++;
      if (g.trackId !== w.id || g.score !== w.score || diff > BOX_TOL || (w.cls !== undefined && g.classId !== w.cls)) {
        differs = true;
        figures.differingBoxes++;
      }
    }
    if (differs) {
      figures.differing++;
      if (figures.mismatches.length < 3) figures.mismatches.push(`frame ${f.frame}: got ${JSON.stringify(got.map((t) => [t.trackId, t.box.map((v) => +v.toFixed(2)), t.score]))} want ${JSON.stringify(want)}`);
    }
  }
  return figures;
}

const files = readdirSync(DIR).filter((f) => f.endsWith('.jsonl')).sort();

describe('ByteTracker equals the reference ByteTrack', () => {
  it('has the fixtures', () => {
    expect(files.length).toBeGreaterThanOrEqual(14);
  });
  for (const file of files) {
    for (const agnostic of [false, true]) {
      it(`${file} ${agnostic ? 'class-agnostic' : 'per class'}`, () => {
        const { header, frames } = load(file);
        expect(frames.length).toBe(header.frames);
        const r = compare(frames, header.frameRate, agnostic);
        console.log(`${header.sequence} ${agnostic ? 'agnostic' : 'per-class'}: ${r.frames} frames, ${r.ids.size} tracks, ${r.boxes} boxes compared, ${r.differingBoxes} differ (${r.otherIds} with another id), ${r.differing} frames differ, max box difference ${r.maxBoxDiff.toExponential(2)} px`);
        expect(r.mismatches).toEqual([]);
        expect(r.differingBoxes).toBe(0);
        expect(r.differing).toBe(0);
      });
    }
  }
});
