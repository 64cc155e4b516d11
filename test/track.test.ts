/**
 * Tracking beyond the reference fixtures: synthetic trajectories (crossing, occlusion and recovery,
 * removal after the buffer, low-score phases, classes), counting lines and zones, the MOT format,
 * the `deimv2 track` command, and bad input.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isDeimError } from '../src/errors.js';
import { linearAssignment } from '../src/track/assignment.js';
import { parseLine, parseZone } from '../src/track/geometry.js';
import { motLines, readDetectionsJsonl } from '../src/track/io.js';
import { ByteTracker, TrackSession, type Track } from '../src/track/index.js';
import type { Detection } from '../src/postprocess/types.js';
import { CLI, ROOT } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

const run = promisify(execFile);

function det(x: number, y: number, w: number, h: number, score = 0.9, classId = 0, label = 'person'): Detection {
  return { label, classId, categoryId: classId + 1, score, box: [x, y, x + w, y + h] };
}

/** Runs frames through a tracker; returns per frame a map from object name to track id. */
function idsOf(tracker: ByteTracker, frames: Array<Array<[string, Detection]>>): Array<Map<string, number>> {
  return frames.map((objs) => {
    const tracks = tracker.update(objs.map(([, d]) => d));
    const m = new Map<string, number>();
    for (const t of tracks) m.set(objs[t.detection]![0], t.trackId);
    return m;
  });
}

const distinct = (frames: Array<Map<string, number>>, name: string) => new Set(frames.map((m) => m.get(name)).filter((v) => v !== undefined));

describe('synthetic trajectories', () => {
  it('two objects crossing keep their ids', () => {
    const frames = Array.from({ length: 80 }, (_, f) => [
      ['a', det(50 + 8 * f, 200, 60, 120)],
      ['b', det(700 - 8 * f, 205, 60, 120)],
    ] as Array<[string, Detection]>);
    const ids = idsOf(new ByteTracker(), frames);
    expect(distinct(ids, 'a')).toEqual(new Set([1]));
    expect(distinct(ids, 'b')).toEqual(new Set([2]));
    expect(ids[79]!.size).toBe(2);
  });

  it('an object hidden for 10 frames comes back with its id; one hidden longer than the buffer gets a new id', () => {
    const frames = Array.from({ length: 120 }, (_, f) => {
      const objs: Array<[string, Detection]> = [];
      if (f < 30 || f >= 40) objs.push(['short', det(100 + 3 * f, 100, 50, 100)]);
      if (f < 30 || f >= 70) objs.push(['long', det(100 + 3 * f, 400, 50, 100)]); // 40 frames away > 30
      return objs;
    });
    const ids = idsOf(new ByteTracker({ frameRate: 30 }), frames);
    expect(distinct(ids, 'short').size).toBe(1);
    const long = [...distinct(ids, 'long')];
    expect(long.length).toBe(2);
    expect(long[1]).toBeGreaterThan(long[0]!);
  });

  it('the buffer scales with the frame rate: 15 lost frames are too many at 10 FPS, not at 30', () => {
    const frames = Array.from({ length: 60 }, (_, f) => (f >= 20 && f < 35 ? [] : [['o', det(100 + 2 * f, 100, 50, 100)]]) as Array<[string, Detection]>);
    expect(distinct(idsOf(new ByteTracker({ frameRate: 30 }), frames), 'o').size).toBe(1);
    expect(distinct(idsOf(new ByteTracker({ frameRate: 10 }), frames), 'o').size).toBe(2);
  });

  it('at the edge of the buffer, as the reference: a track missing max_time_lost + 1 frames is still found (it is removed a frame late), not after + 2; found that way, it is gone as soon as it is lost again', () => {
    // Seen in frames 1..10, missing from frame 11 for `gap` frames, then seen again until frame 60
    // (and, with `relost`, missing again in frames 48..50). max_time_lost = int(fps / 30 * 30).
    const seq = (gap: number, relost = false) =>
      Array.from({ length: 60 }, (_, f) => {
        const frame = f + 1;
        const away = (frame > 10 && frame <= 10 + gap) || (relost && frame >= 48 && frame <= 50);
        return (away ? [] : [['o', det(100, 100, 50, 100)]]) as Array<[string, Detection]>;
      });
    for (const [fps, lostMax] of [[30, 30], [29.97, 29], [30.303, 30], [12.5, 12], [7.5, 7]] as const) {
      const ids = (gap: number, relost = false) => [...distinct(idsOf(new ByteTracker({ frameRate: fps }), seq(gap, relost)), 'o')];
      expect(ids(lostMax), `${fps} FPS`).toEqual([1]);
      expect(ids(lostMax + 1), `${fps} FPS`).toEqual([1]);
      expect(ids(lostMax + 2), `${fps} FPS`).toEqual([1, 2]);
      // An ordinary track is found again after 3 missing frames; one found at the buffer's edge is not.
      expect(ids(lostMax, true), `${fps} FPS`).toEqual([1]);
      expect(ids(lostMax + 1, true), `${fps} FPS`).toEqual([1, 2]);
    }
  });

  it('low-score detections keep a track going (second association); they never start one', () => {
    const frames = Array.from({ length: 40 }, (_, f) => [['o', det(100 + 4 * f, 100, 50, 100, f >= 10 && f < 25 ? 0.3 : 0.9)], ['weak', det(600, 300, 50, 50, 0.3)]] as Array<[string, Detection]>);
    const ids = idsOf(new ByteTracker(), frames);
    expect(ids.every((m) => m.get('o') === 1)).toBe(true);
    expect(distinct(ids, 'weak').size).toBe(0);
  });

  it('a track is born at score >= track_thresh + 0.1 and confirmed in its second frame (at once in the first frame)', () => {
    const tracker = new ByteTracker();
    expect(tracker.update([det(10, 10, 50, 50, 0.9)]).map((t) => t.trackId)).toEqual([1]); // first frame: activated at once
    expect(tracker.update([det(10, 10, 50, 50, 0.9), det(300, 300, 50, 50, 0.55)])).toHaveLength(1); // 0.55 < 0.6: no birth
    expect(tracker.update([det(10, 10, 50, 50, 0.9), det(300, 300, 50, 50, 0.7)])).toHaveLength(1); // born, unconfirmed
    const t = tracker.update([det(10, 10, 50, 50, 0.9), det(302, 300, 50, 50, 0.7)]);
    expect(t.map((x) => x.trackId)).toEqual([1, 2]);
  });

  it('tracks each class on its own by default; --track-agnostic tracks them together', () => {
    // A car box turns into a truck box on the same spot.
    const frames = Array.from({ length: 20 }, (_, f) => [f < 10 ? det(100 + f, 100, 80, 60, 0.9, 2, 'car') : det(100 + f, 100, 80, 60, 0.9, 7, 'truck')]);
    const perClass = new ByteTracker();
    const agnostic = new ByteTracker({ agnostic: true });
    const a = frames.map((d) => perClass.update(d));
    const b = frames.map((d) => agnostic.update(d));
    expect(new Set(a.flat().map((t) => t.trackId)).size).toBe(2);
    expect(a[19]![0]!.label).toBe('truck');
    expect(new Set(b.flat().map((t) => t.trackId))).toEqual(new Set([1]));
    expect(b[19]![0]!.label).toBe('truck');
  });

  it('leaves out tiny tracks (area <= min box area) but keeps tracking them', () => {
    const tracker = new ByteTracker();
    expect(tracker.update([det(10, 10, 3, 3)])).toHaveLength(0);
    expect(new ByteTracker({ minBoxArea: 0 }).update([det(10, 10, 3, 3)])).toHaveLength(1);
  });
});

describe('assignment', () => {
  it('matches a pair only when its cost is at most the threshold, and finds the optimum', () => {
    const cost = Float64Array.from([0.1, 0.2, 0.3, 0.15, 0.9, 0.95]);
    const r = linearAssignment(cost, 3, 2, 0.5);
    // {0-0, 1-1}: 0.1 + 0.15 = 0.25 - 2 * 0.5 -> best.
    expect(r.matches).toEqual([[0, 0], [1, 1]]);
    expect(r.unmatchedRows).toEqual([2]);
    // A cost equal to the limit: lapjv matches it (the unmatched alternative costs the same).
    expect(linearAssignment(Float64Array.from([0.5]), 1, 1, 0.5).matches).toEqual([[0, 0]]);
    expect(linearAssignment(Float64Array.from([0.5000001]), 1, 1, 0.5).matches).toEqual([]);
    expect(linearAssignment(new Float64Array(0), 0, 3, 0.5).unmatchedCols).toEqual([0, 1, 2]);
  });

  it('the cost limit is part of the problem, not a filter after it (lapjv with extend_cost and cost_limit)', () => {
    // Without the limit the optimum is 0-1 + 1-0 (0.9 < 0.95), both below 0.5; with it, 0-0 alone
    // is better (0.05 - 0.5 = -0.45 against 0.9 - 2 x 0.5 = -0.1).
    expect(linearAssignment(Float64Array.from([0.05, 0.45, 0.45, 0.9]), 2, 2, 0.5).matches).toEqual([[0, 0]]);
  });

  it('breaks ties between equally good assignments as lap.lapjv does (scipy picks the others)', () => {
    // Checked against lap's lapjv (scripts/make-track-fixtures.py builds it).
    expect(linearAssignment(Float64Array.from([0.2, 0.2, 0.2, 0.2]), 2, 2, 0.8).matches).toEqual([[0, 1], [1, 0]]);
    expect(linearAssignment(Float64Array.from([0.3, 0.3, 0.9, 0.3, 0.3, 0.9]), 2, 3, 0.8).matches).toEqual([[0, 1], [1, 0]]);
    expect(linearAssignment(Float64Array.from([0.2, 0.2]), 1, 2, 0.8).matches).toEqual([[0, 1]]);
  });

  it('gives the same matching whole and split into components (large problems)', () => {
    // 400 tracks x 400 detections on a grid: over the whole-problem limit, solved per component.
    const tracker = new ByteTracker({ agnostic: true });
    const grid = (dx: number) => Array.from({ length: 400 }, (_, k) => det(20 + (k % 20) * 60 + dx, 20 + Math.floor(k / 20) * 60, 40, 40, 0.9 - (k % 7) * 0.01));
    for (let f = 0; f < 5; f++) tracker.update(grid(f * 2));
    const tracks = tracker.update(grid(10));
    expect(tracks).toHaveLength(400);
    expect(new Set(tracks.map((t) => t.trackId)).size).toBe(400);
    expect(Math.max(...tracks.map((t) => t.trackId))).toBe(400);
  });
});

describe('counting lines and zones', () => {
  it('counts each crossing once, per class and direction', () => {
    const session = new TrackSession({ lines: ['0,300,1000,300:gate'], zones: ['0,0,1000,0,1000,250,0,250:top'], frameRate: 10 });
    // Three people go down through the line; one of them comes back up; a car passes the line's end (no count).
    for (let f = 0; f < 60; f++) {
      const y = f < 30 ? 100 + 10 * f : 400 - 10 * (f - 30);
      const dets = [det(100, y, 40, 80), det(300, 100 + 10 * Math.min(f, 29), 40, 80), det(500, 100 + 10 * Math.min(f, 29), 40, 80), det(1100, 100 + 10 * f, 60, 40, 0.9, 2, 'car')];
      session.update(f, dets);
    }
    const s = session.summary();
    expect(s.lines[0]).toMatchObject({ name: 'gate', totalIn: 3, totalOut: 1, in: { person: 3 }, out: { person: 1 } });
    expect(s.tracks).toBe(4);
    const top = s.zones[0]!;
    expect(top.name).toBe('top');
    expect(top.maxOccupancy).toBe(3);
    // Detection centres are inside (y + 40 < 250) in frames 0..10; the filtered box lags a frame behind.
    const still = top.dwell.find((d) => d.trackId === 2)!;
    expect(still.frames).toBeGreaterThanOrEqual(11);
    expect(still.frames).toBeLessThanOrEqual(12);
    expect(still.seconds).toBeCloseTo(still.frames / 10, 6);
  });

  it('reports counts per frame', () => {
    const session = new TrackSession({ lines: ['0,100,500,100'] });
    const r0 = session.update(0, [det(10, 40, 20, 100)]); // centre y 90
    const r1 = session.update(1, [det(10, 65, 20, 100)]); // centre y 115: across y = 100
    expect(r0.counts!.crossings).toEqual([]);
    expect(r1.counts!.crossings).toEqual([{ line: 'line1', trackId: 1, label: 'person', direction: 'in' }]);
    expect(r1.counts!.lines).toEqual({ line1: { in: 1, out: 0 } });
  });

  it('gives detections their track ids and filters what is shown at the threshold', () => {
    const session = new TrackSession({ threshold: 0.5 });
    const r = session.update(0, [det(10, 10, 50, 50, 0.9), det(200, 200, 50, 50, 0.3)]);
    expect(r.detections).toHaveLength(1);
    expect(r.detections[0]!.trackId).toBe(1);
  });
});

describe('MOT and JSONL files', () => {
  it('writes MOTChallenge lines: 1-based frame, id, x, y, w, h, score, -1, -1, -1', () => {
    const t: Track = { trackId: 3, box: [10.123, 20, 60.5, 120], score: 0.876, classId: 0, detection: 0, startFrame: 1 };
    expect(motLines(0, [t])).toBe('1,3,10.12,20.00,50.38,100.00,0.88,-1,-1,-1\n');
  });

  /** Runs `deimv2 track` on a reference fixture's detections; checks ids, scores and boxes (0.01 px as written) against its tracks. */
  async function trackAgainstFixture(file: string, args: string[], agnostic: boolean) {
    const dir = tempDir();
    const fixture = readFileSync(path.join(ROOT, 'test', 'fixtures', 'track', file), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const frames = fixture.slice(1) as Array<{ frame: number; dets: number[][]; tracks: number[][]; agnostic: number[][] }>;
    const dets = path.join(dir, 'dets.jsonl');
    writeFileSync(dets, frames.map((f) => JSON.stringify({ frame: f.frame - 1, pts: (f.frame - 1) / 30, detections: f.dets.map(([c, s, x1, y1, x2, y2]) => ({ label: `c${c}`, classId: c, categoryId: c, score: s, box: [x1, y1, x2, y2] })) })).join('\n') + '\n');
    const out = path.join(dir, 'tracks.jsonl');
    const mot = path.join(dir, 'tracks.txt');
    await run(process.execPath, [CLI, 'track', '--detections', dets, '--out', out, '--mot', mot, '-q', ...args]);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.at(-1).summary.frames).toBe(frames.length);
    let boxes = 0;
    lines.slice(0, -1).forEach((l, i) => {
      const want = agnostic ? frames[i]!.agnostic.map(([id, ...rest]) => [id!, -1, ...rest]) : frames[i]!.tracks;
      expect(l.tracks.map((t: { trackId: number }) => t.trackId), `frame ${i + 1}`).toEqual(want.map((r) => r[0]));
      l.tracks.forEach((t: { box: number[]; score: number }, k: number) => {
        const [, , x, y, w, h, s] = want[k]!;
        expect(t.score).toBe(s);
        [x!, y!, x! + w!, y! + h!].forEach((v, j) => expect(Math.abs(t.box[j]! - v)).toBeLessThanOrEqual(0.0051));
        boxes++;
      });
    });
    return { frames, boxes, mot };
  }

  it('deimv2 track --fps 30.303 --track-agnostic equals the reference on people close to the camera (large boxes changing fast, lost and found at the buffer\'s edge)', async () => {
    const { boxes } = await trackAgainstFixture('close-up-30.303fps-clipped.jsonl', ['--fps', '30.303', '--track-agnostic'], true);
    expect(boxes).toBe(186);
  });

  it('deimv2 track equals the reference on the car fixture and writes MOT', async () => {
    const { frames, boxes, mot } = await trackAgainstFixture('car-atto.jsonl', [], false);
    expect(boxes).toBeGreaterThan(300);
    const motText = readFileSync(mot, 'utf8').trim().split('\n');
    expect(motText).toHaveLength(boxes);
    for (const row of motText) expect(row).toMatch(/^\d+,\d+,-?\d+\.\d\d,-?\d+\.\d\d,\d+\.\d\d,\d+\.\d\d,[01]\.\d\d,-1,-1,-1$/);
    expect(Number(motText[0]!.split(',')[0])).toBe(frames.findIndex((f) => f.tracks.length > 0) + 1);
  });
});

describe('bad input', () => {
  const write = (name: string, text: string) => {
    const file = path.join(tempDir(), name);
    writeFileSync(file, text);
    return file;
  };
  const readAll = async (file: string) => {
    for await (const _ of readDetectionsJsonl(file)) void _;
  };
  const frame = (n: number, box: unknown, score: unknown = 0.9) => JSON.stringify({ frame: n, detections: [{ label: 'person', classId: 0, score, box }] });

  it('a detections file that is not JSON lines names the file and line', async () => {
    const file = write('image.json', JSON.stringify({ model: 'atto', results: [] }, null, 2));
    await expect(readAll(file)).rejects.toMatchObject({ code: 'ERR_INPUT_UNREADABLE', message: expect.stringMatching(/image\.json line 1: not a JSON line/) });
    const other = write('other.jsonl', '{"model":"atto","results":[]}\n');
    await expect(readAll(other)).rejects.toThrow(/image run/);
    await expect(readAll(path.join(tempDir(), 'missing.jsonl'))).rejects.toMatchObject({ code: 'ERR_INPUT_NOT_FOUND' });
    await expect(readAll(write('empty.jsonl', ''))).rejects.toMatchObject({ code: 'ERR_INPUT_EMPTY' });
  });

  it('frames out of order', async () => {
    const file = write('order.jsonl', [frame(0, [1, 1, 5, 5]), frame(2, [1, 1, 5, 5]), frame(1, [1, 1, 5, 5])].join('\n'));
    await expect(readAll(file)).rejects.toThrow(/order\.jsonl line 3: frames out of order: frame 1 comes after frame 2/);
    expect(() => new TrackSession().update(0, []).frame).not.toThrow();
    const s = new TrackSession();
    s.update(5, []);
    expect(() => s.update(5, [])).toThrow(/increasing order/);
  });

  it('NaN, negative and inverted boxes, bad scores', async () => {
    await expect(readAll(write('nan.jsonl', frame(0, [1, null, 5, 5])))).rejects.toThrow(/nan\.jsonl line 1: detection 0: box \[1,null,5,5\] has a value that is not a finite number/);
    await expect(readAll(write('neg.jsonl', frame(0, [-3, 1, 5, 5])))).rejects.toThrow(/negative coordinate/);
    await expect(readAll(write('inv.jsonl', frame(0, [6, 1, 5, 5])))).rejects.toThrow(/negative width or height/);
    await expect(readAll(write('score.jsonl', frame(0, [1, 1, 5, 5], 1.5)))).rejects.toThrow(/score must be a number from 0 to 1/);
    const tracker = new ByteTracker();
    expect(() => tracker.update([det(NaN, 1, 5, 5)])).toThrow(/frame 1, detection 0: box .* not a finite number/);
    expect(() => tracker.update([{ box: [5, 5, 1, 1], score: 0.5 }])).toThrow(/negative width or height/);
    try {
      tracker.update([{ box: [1, 1, 2], score: 0.5 }]);
    } catch (e) {
      expect(isDeimError(e, 'ERR_INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('lines and zones with too few or non-numeric points, zones that are not simple polygons', () => {
    expect(() => parseLine('1,2,3')).toThrow(/--line "1,2,3": needs exactly 4 numbers/);
    expect(() => parseLine('1,2,x,4:gate')).toThrow(/"x" is not a number/);
    expect(() => parseLine('1,2,1,2')).toThrow(/same point/);
    expect(() => parseZone('0,0,10,0')).toThrow(/at least 3 points/);
    expect(() => parseZone('0,0,10,0,10')).toThrow(/at least 3 points/);
    expect(() => parseZone('0,0,10,10,10,0,0,10:bowtie')).toThrow(/not a simple polygon: edge 1-2 crosses edge 3-4/);
    expect(() => parseZone('0,0,5,5,10,10')).toThrow(/area is zero/);
    expect(parseZone('0,0,10,0,10,10:sq')).toEqual({ name: 'sq', points: [0, 0, 10, 0, 10, 10] });
    expect(() => new TrackSession({ lines: ['0,0,1,1:a', '0,5,1,5:a'] })).toThrow(/two lines are named "a"/);
    expect(() => new ByteTracker({ trackBuffer: -1 })).toThrow(/trackBuffer/);
  });

  it('the CLI reports them as errors with the input named, and never writes over the input', async () => {
    const dets = write('d.jsonl', frame(0, [1, 1, 50, 50]) + '\n');
    const fail = (args: string[]) => run(process.execPath, [CLI, ...args]).then(() => '', (e: { stderr: string; code: number }) => `${e.code} ${e.stderr}`);
    expect(await fail(['track', '-d', dets, '--out', path.join(path.dirname(dets), 'o.jsonl'), '--zone', '0,0,1,1'])).toMatch(/^1 deimv2: --zone "0,0,1,1": needs at least 3 points.*\[ERR_INVALID_ARGUMENT\]/s);
    expect(await fail(['track', '-d', dets, '--out', dets])).toMatch(/would overwrite the input/);
    expect(await fail(['track', '-d', dets, '--out', path.join(path.dirname(dets), 'o.jsonl'), '--track-buffer', 'x'])).toMatch(/--track-buffer must be an integer/);
    expect(readFileSync(dets, 'utf8')).toBe(frame(0, [1, 1, 50, 50]) + '\n');
  });
});
