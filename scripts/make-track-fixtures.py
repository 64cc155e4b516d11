#!/usr/bin/env python3
"""Golden fixtures for the tracker: runs the reference ByteTrack on detection sequences.

The reference is ifzhang/ByteTrack (yolox/tracker/byte_tracker.py, matching.py, kalman_filter.py,
basetrack.py) and lap's lapjv (gatagat/lap), both read from checkouts OUTSIDE this repository
(nothing of them is committed):

    git -C <ByteTrack clone> archive HEAD yolox/tracker | tar -x -C /work/scratch/track/ByteTrack
    git -C <lap clone> archive HEAD _lapjv_cpp | tar -x -C /work/scratch/track/lap
    # lapjv_internal with a C entry point: lapjv_c(n, row-major n x n costs, x, y)
    printf '#include <stdlib.h>\n#include "lapjv.h"\nextern "C" int lapjv_c(unsigned n, double *c, int *x, int *y) {\n  double **r = (double **)malloc(n * sizeof(double *));\n  for (unsigned i = 0; i < n; i++) r[i] = c + (size_t)i * n;\n  int e = lapjv_internal(n, r, x, y);\n  free(r);\n  return e;\n}\n' > /work/scratch/track/lap/_lapjv_cpp/wrap.cpp
    g++ -O2 -fPIC -shared -o /work/scratch/track/liblapjv.so /work/scratch/track/lap/_lapjv_cpp/{lapjv,wrap}.cpp
    deimv2 detect car-detection.mp4 --json car.jsonl --threshold 0.1   # and traffic-1080p-20frames.mp4
    /usr/bin/python3 scripts/make-track-fixtures.py --bytetrack /work/scratch/track/ByteTrack \
        --lapjv /work/scratch/track/liblapjv.so --video car-atto=car.jsonl --video traffic-atto=traffic.jsonl

Needs numpy and scipy. The reference's compiled or heavy imports are stood in for, and nothing
else is changed:
  - cython_bbox.bbox_overlaps: IoU with the +1 pixel convention, areas (x2 - x1 + 1) * (y2 - y1 + 1),
    written out below in the same operation order.
  - lap.lapjv(cost, extend_cost=True, cost_limit=t): lap's own C++ solver (lapjv_internal) on the
    extended matrix built as lap's _lapjv.pyx builds it: (rows + cols) square, t / 2 for leaving a
    row or a column unmatched, 0 for dummy-dummy pairs. (scipy's linear_sum_assignment on the same
    matrix, scipy_lapjv below, has the same optima but breaks ties otherwise: it was the stand-in
    of the first fixtures, and differs from lap on duplicate boxes tracked class-agnostic.)
  - torch and cv2 are imported by the reference but not used by the tracker: empty modules.
  - numpy >= 1.24 has no np.float: it is set to float before the reference is imported.

Per-class tracking (our default) runs one reference BYTETracker per class, created when the class
first appears with its frame counter set to the frames already seen (so that only tracks born in
the very first frame are activated at once, as in the reference), all sharing the reference's
global id counter, updated every frame in ascending class order. Class-agnostic tracking is one
BYTETracker on all detections, exactly the reference. Output tracks with w * h <= min_box_area (10)
are left out as the reference demo does; the demo's aspect-ratio filter (w / h > 1.6, meant for
pedestrians) is not applied.

Output: test/fixtures/track/<name>.jsonl, a header line then one line per frame:
  {"frame": n, "dets": [[classId, score, x1, y1, x2, y2], ...],
   "tracks": [[id, classId, x, y, w, h, score], ...], "agnostic": [[id, x, y, w, h, score], ...]}
Detections are the input as given to both trackers (boxes rounded to 0.01 px, scores to 1e-5,
only scores > 0.1); track boxes are rounded to 1e-4 px. A fixture whose header names "detsFrom"
(the same detections at another frame rate) has no "dets" of its own: they are that file's.
"""
import argparse
import json
import os
import sys
import types

import numpy as np
from scipy.optimize import linear_sum_assignment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bbox_overlaps(boxes, query_boxes):
    n, k = boxes.shape[0], query_boxes.shape[0]
    overlaps = np.zeros((n, k), dtype=np.float64)
    for kk in range(k):
        q = query_boxes[kk]
        box_area = (q[2] - q[0] + 1) * (q[3] - q[1] + 1)
        for nn in range(n):
            b = boxes[nn]
            iw = min(b[2], q[2]) - max(b[0], q[0]) + 1
            if iw > 0:
                ih = min(b[3], q[3]) - max(b[1], q[1]) + 1
                if ih > 0:
                    ua = float((b[2] - b[0] + 1) * (b[3] - b[1] + 1) + box_area - iw * ih)
                    overlaps[nn, kk] = iw * ih / ua
    return overlaps


def scipy_lapjv(cost, extend_cost=False, cost_limit=np.inf, return_cost=True):
    """The former stand-in: scipy on the same extended matrix (same optima, other tie-breaking)."""
    assert extend_cost and cost_limit < np.inf
    n, m = cost.shape
    big = np.full((n + m, n + m), cost_limit / 2.0)
    big[n:, m:] = 0
    big[:n, :m] = cost
    rows, cols = linear_sum_assignment(big)
    x = np.full(n, -1, dtype=np.int64)
    y = np.full(m, -1, dtype=np.int64)
    for r, c in zip(rows, cols):
        if r < n and c < m:
            x[r] = c
            y[c] = r
    return 0.0, x, y


def real_lapjv(lib_path):
    """lap.lapjv as lap's _lapjv.pyx does it, around lap's own C++ solver (lapjv_internal from
    _lapjv_cpp/lapjv.cpp, compiled into lib_path with a C entry lapjv_c(n, rows, x, y))."""
    import ctypes
    lib = ctypes.CDLL(lib_path)
    lib.lapjv_c.restype = ctypes.c_int
    lib.lapjv_c.argtypes = [ctypes.c_uint, ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]

    def lapjv(cost, extend_cost=False, cost_limit=np.inf, return_cost=True):
        cost_c = np.ascontiguousarray(cost, dtype=np.double)
        n_rows, n_cols = cost_c.shape
        if n_rows == n_cols:
            n = n_rows
        elif not extend_cost:
            raise ValueError('Square cost array expected')
        if cost_limit < np.inf:
            n = n_rows + n_cols
            ext = np.empty((n, n), dtype=np.double)
            ext[:] = cost_limit / 2.
            ext[n_rows:, n_cols:] = 0
            ext[:n_rows, :n_cols] = cost_c
            cost_c = ext
        elif extend_cost:
            n = max(n_rows, n_cols)
            ext = np.zeros((n, n), dtype=np.double)
            ext[:n_rows, :n_cols] = cost_c
            cost_c = ext
        cost_c = np.ascontiguousarray(cost_c)
        x = np.empty((n,), dtype=np.int32)
        y = np.empty((n,), dtype=np.int32)
        ret = lib.lapjv_c(n, cost_c.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), x.ctypes.data_as(ctypes.POINTER(ctypes.c_int)), y.ctypes.data_as(ctypes.POINTER(ctypes.c_int)))
        if ret != 0:
            raise RuntimeError(f'lapjv_internal returned {ret}')
        if cost_limit < np.inf or extend_cost:
            x[x >= n_cols] = -1
            y[y >= n_rows] = -1
            x = x[:n_rows]
            y = y[:n_cols]
        return 0.0, x, y
    return lapjv


def load_reference(path, lapjv):
    np.float = float  # removed in numpy 1.24, used by the reference
    sys.modules['cython_bbox'] = types.SimpleNamespace(bbox_overlaps=bbox_overlaps)
    sys.modules['lap'] = types.SimpleNamespace(lapjv=lapjv)
    torch = types.ModuleType('torch')
    torch.nn = types.ModuleType('torch.nn')
    torch.nn.functional = types.ModuleType('torch.nn.functional')
    sys.modules.update({'torch': torch, 'torch.nn': torch.nn, 'torch.nn.functional': torch.nn.functional, 'cv2': types.ModuleType('cv2')})
    yolox = types.ModuleType('yolox')  # skip yolox/__init__.py (it imports torch)
    yolox.__path__ = [os.path.join(path, 'yolox')]
    sys.modules['yolox'] = yolox
    from yolox.tracker import byte_tracker, basetrack
    return byte_tracker.BYTETracker, basetrack.BaseTrack


class Args:
    track_thresh = 0.5
    track_buffer = 30
    match_thresh = 0.8
    mot20 = False


MIN_BOX_AREA = 10


def run_reference(BYTETracker, BaseTrack, frames, frame_rate, agnostic):
    BaseTrack._count = 0
    trackers = {}
    out = []
    size = (1000, 1000)  # img_info == img_size: the reference's rescale divides by 1.0
    for index, dets in enumerate(frames, 1):
        keys = [-1] if agnostic else sorted(set(trackers) | {d[0] for d in dets})
        rows = []
        for key in keys:
            if key not in trackers:
                trackers[key] = BYTETracker(Args(), frame_rate=frame_rate)
                trackers[key].frame_id = index - 1
            mine = [d for d in dets if agnostic or d[0] == key]
            arr = np.array([[d[2], d[3], d[4], d[5], d[1]] for d in mine], dtype=np.float64).reshape(-1, 5)
            for t in trackers[key].update(arr, size, size):
                tlwh = t.tlwh
                if tlwh[2] * tlwh[3] <= MIN_BOX_AREA:
                    continue
                box = [round(float(v), 4) for v in tlwh]
                rows.append([int(t.track_id)] + ([] if agnostic else [key]) + box + [float(t.score)])
        out.append(rows)
    return out


def read_detections(path):
    frames = []
    last = None
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            if last is not None and r['frame'] <= last:
                raise SystemExit(f'{path}: frames out of order at {r["frame"]}')
            last = r['frame']
            dets = []
            for d in r['detections']:
                s = round(d['score'], 5)
                if s <= 0.1:
                    continue
                dets.append([d['classId'], s] + [round(v, 2) for v in d['box']])
            frames.append(dets)
    return frames


def synthetic(seed, n_frames, n_objects, size=(1280, 720)):
    """Objects moving and crossing, hidden for a while (some longer than the buffer), with phases of
    low scores, jitter, and low-score clutter; two classes."""
    rng = np.random.default_rng(seed)
    W, H = size
    objs = []
    for k in range(n_objects):
        w, h = rng.uniform(30, 160), rng.uniform(30, 160)
        x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
        vx, vy = rng.uniform(-6, 6), rng.uniform(-4, 4)
        start = int(rng.integers(0, n_frames // 3))
        end = int(rng.integers(start + n_frames // 3, n_frames + 1))
        hidden = []
        for _ in range(int(rng.integers(0, 3))):
            a = int(rng.integers(start, end))
            hidden.append((a, a + int(rng.choice([3, 8, 20, 45]))))
        weak = []
        for _ in range(int(rng.integers(0, 3))):
            a = int(rng.integers(start, end))
            weak.append((a, a + int(rng.integers(3, 15))))
        objs.append(dict(w=w, h=h, x=x, y=y, vx=vx, vy=vy, start=start, end=end, hidden=hidden, weak=weak, cls=int(rng.choice([0, 2]))))
    # two pairs that cross head-on at the same height and size
    for k in range(2):
        y = rng.uniform(100, H - 200)
        base = dict(w=80.0, h=120.0, y=y, vy=0.0, start=10 + 40 * k, end=n_frames, hidden=[], weak=[], cls=0)
        objs.append(dict(base, x=50.0, vx=5.0))
        objs.append(dict(base, x=W - 130.0, vx=-5.0, y=y + rng.uniform(-8, 8)))
    frames = []
    for f in range(n_frames):
        dets = []
        for o in objs:
            if not (o['start'] <= f < o['end']):
                continue
            t = f - o['start']
            if any(a <= f < b for a, b in o['hidden']):
                continue
            x = o['x'] + o['vx'] * t + rng.normal(0, 1.5)
            y = o['y'] + o['vy'] * t + 0.01 * t * t * np.sign(o['vy'] or 1) + rng.normal(0, 1.5)
            w = o['w'] * (1 + rng.normal(0, 0.03))
            h = o['h'] * (1 + rng.normal(0, 0.03))
            x1, y1, x2, y2 = max(0.0, x), max(0.0, y), min(W, x + w), min(H, y + h)
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            weak = any(a <= f < b for a, b in o['weak'])
            score = rng.uniform(0.15, 0.45) if weak else rng.uniform(0.55, 0.95)
            dets.append([o['cls'], round(float(score), 5), round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)])
        for _ in range(int(rng.integers(0, 4))):  # clutter
            x, y = rng.uniform(0, W - 60), rng.uniform(0, H - 60)
            dets.append([int(rng.choice([0, 2])), round(float(rng.uniform(0.11, 0.5)), 5), round(x, 2), round(y, 2), round(x + rng.uniform(10, 60), 2), round(y + rng.uniform(10, 60), 2)])
        order = rng.permutation(len(dets))
        frames.append([dets[i] for i in order])
    return frames


def close_up(seed, n_frames, frame_rate, clip=True, size=(1280, 720)):
    """One to three people close to the camera: large boxes (up to most of the frame) that grow and
    shrink fast, run over the frame's edges (clipped to the frame as a detector writes them, or not:
    negative coordinates and beyond the width and height), cross each other; detections missing
    for exactly the frames around the track buffer (max_time_lost - 1 .. + 2 at this frame rate),
    low-score phases, the same box twice (another class, a lower score), low-score clutter."""
    rng = np.random.default_rng(seed)
    W, H = size
    lost_max = int(frame_rate / 30.0 * Args.track_buffer)
    people = []
    for k in range(int(rng.integers(1, 4))):
        start = int(rng.integers(0, n_frames // 4))
        hidden = []
        a = start + int(rng.integers(5, 30))
        while a < n_frames:
            span = int(rng.choice([lost_max - 1, lost_max, lost_max + 1, lost_max + 2, 1, 2, 5]))
            hidden.append((a, a + max(span, 1)))
            a += max(span, 1) + int(rng.integers(10, 60))
        people.append(dict(start=start, cx=rng.uniform(0.2, 0.8) * W, cy=rng.uniform(0.4, 0.6) * H, vx=rng.uniform(-12, 12), h=rng.uniform(0.3, 0.9) * H,
                           ar=rng.uniform(0.35, 1.3), hidden=hidden, weak=[(b, b + int(rng.integers(2, 12))) for b in rng.integers(start, n_frames, 3)]))
    frames = []
    for f in range(n_frames):
        dets = []
        for o in people:
            if f < o['start']:
                continue
            # fast growth and shrinking, turns, wobble
            o['h'] = float(np.clip(o['h'] * np.exp(rng.normal(0, 0.06) + 0.05 * np.sin(f / 7.0)), 60, 1.4 * H))
            o['ar'] = float(np.clip(o['ar'] * np.exp(rng.normal(0, 0.04)), 0.25, 2.0))
            if rng.random() < 0.03:
                o['vx'] = -o['vx']
            o['cx'] += o['vx'] + rng.normal(0, 4)
            o['cy'] += rng.normal(0, 3)
            if o['cx'] < -0.2 * W or o['cx'] > 1.2 * W:
                o['vx'] = -o['vx']
            if any(a <= f < b for a, b in o['hidden']):
                continue
            h, w = o['h'], o['h'] * o['ar']
            x1, y1, x2, y2 = o['cx'] - w / 2, o['cy'] - h / 2, o['cx'] + w / 2, o['cy'] + h / 2
            if clip:
                x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(W, x2), min(H, y2)
            if x2 - x1 < 4 or y2 - y1 < 4:
                continue
            weak = any(a <= f < b for a, b in o['weak'])
            score = round(float(rng.uniform(0.12, 0.55) if weak else rng.uniform(0.5, 0.95)), 5)
            box = [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)]
            dets.append([0, score, *box])
            if rng.random() < 0.15:  # the same box as another class (class-agnostic: a duplicate)
                dets.append([1, round(score * rng.uniform(0.3, 1.0), 5), *box])
            if rng.random() < 0.1:  # a second, shifted box on the same person
                d = rng.normal(0, 0.05 * h, 4)
                dets.append([0, round(float(rng.uniform(0.11, 0.7)), 5)] + [round(box[i] + d[i], 2) for i in range(4)])
        for _ in range(int(rng.integers(0, 3))):
            x, y = rng.uniform(0, W - 80), rng.uniform(0, H - 80)
            dets.append([int(rng.choice([0, 1])), round(float(rng.uniform(0.11, 0.45)), 5), round(x, 2), round(y, 2), round(x + rng.uniform(10, 80), 2), round(y + rng.uniform(10, 80), 2)])
        dets = [d for d in dets if d[1] > 0.1 and d[4] > d[2] and d[5] > d[3]]
        order = rng.permutation(len(dets))
        frames.append([dets[i] for i in order])
    return frames


def crowd(seed, n_frames, n_objects, size=(1920, 1080)):
    """A crowd of objects of three classes, one in ten missing in a frame, and one in twelve
    detected twice with the very same box (as another class, the same score or a lower one): where
    tracked class-agnostic, assignments tie, and which of two equal detections a track takes
    decides which one starts a new track."""
    rng = np.random.default_rng(seed)
    W, H = size
    objs = [dict(x=rng.uniform(0, W - 120), y=rng.uniform(0, H - 200), vx=rng.uniform(-5, 5), vy=rng.uniform(-3, 3), w=rng.uniform(20, 120), h=rng.uniform(30, 200)) for _ in range(n_objects)]
    frames = []
    for f in range(n_frames):
        dets = []
        for o in objs:
            if rng.random() < 0.1:
                continue
            x, y = o['x'] + o['vx'] * f + rng.normal(0, 2), o['y'] + o['vy'] * f + rng.normal(0, 2)
            s = round(float(rng.uniform(0.11, 0.99)), 5)
            b = [round(x, 2), round(y, 2), round(x + o['w'] * np.exp(rng.normal(0, .05)), 2), round(y + o['h'] * np.exp(rng.normal(0, .05)), 2)]
            dets.append([int(rng.integers(0, 3)), s] + b)
            if rng.random() < 0.08:
                dets.append([int(rng.integers(0, 3)), s if rng.random() < 0.5 else round(s * 0.9, 5)] + b)
        frames.append([dets[i] for i in rng.permutation(len(dets))])
    return frames


def write_fixture(name, source, frames, frame_rate, BYTETracker, BaseTrack, out_dir, dets_from=None):
    per_class = run_reference(BYTETracker, BaseTrack, frames, frame_rate, False)
    agnostic = run_reference(BYTETracker, BaseTrack, frames, frame_rate, True)
    path = os.path.join(out_dir, f'{name}.jsonl')
    with open(path, 'w') as f:
        header = dict(sequence=name, source=source, frameRate=frame_rate, frames=len(frames), trackThresh=Args.track_thresh, trackBuffer=Args.track_buffer,
                      matchThresh=Args.match_thresh, minBoxArea=MIN_BOX_AREA, reference='ifzhang/ByteTrack yolox/tracker, lap lapjv (see scripts/make-track-fixtures.py)')
        if dets_from:
            header['detsFrom'] = dets_from
        f.write(json.dumps(header) + '\n')
        for i, dets in enumerate(frames):
            row = dict(frame=i + 1, tracks=per_class[i], agnostic=agnostic[i]) if dets_from else dict(frame=i + 1, dets=dets, tracks=per_class[i], agnostic=agnostic[i])
            f.write(json.dumps(row, separators=(',', ':')) + '\n')
    ids_pc = {r[0] for rows in per_class for r in rows}
    ids_ag = {r[0] for rows in agnostic for r in rows}
    print(f'{path}: {len(frames)} frames, {sum(map(len, frames))} detections, per-class {sum(map(len, per_class))} boxes / {len(ids_pc)} ids, '
          f'agnostic {sum(map(len, agnostic))} boxes / {len(ids_ag)} ids, {os.path.getsize(path)} bytes')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bytetrack', required=True, help='folder holding yolox/tracker of ifzhang/ByteTrack')
    ap.add_argument('--lapjv', required=True, help="shared library of lap's _lapjv_cpp/lapjv.cpp with the lapjv_c entry (see above)")
    ap.add_argument('--video', action='append', default=[], help='NAME=detections.jsonl (deimv2 detect video --json, threshold 0.1)')
    ap.add_argument('--out', default=os.path.join(ROOT, 'test', 'fixtures', 'track'))
    a = ap.parse_args()
    BYTETracker, BaseTrack = load_reference(a.bytetrack, real_lapjv(a.lapjv))
    os.makedirs(a.out, exist_ok=True)
    run = lambda name, source, frames, rate, **kw: write_fixture(name, source, frames, rate, BYTETracker, BaseTrack, a.out, **kw)
    for spec in a.video:
        name, path = spec.split('=', 1)
        frames = read_detections(path)
        run(name, os.path.basename(path), frames, 30)
        for rate in (30.303, 12.5):  # the same detections at frame rates whose buffer is not 30 x rate / 30
            run(f'{name}-{rate}fps', os.path.basename(path), frames, rate, dets_from=f'{name}.jsonl')
    run('synthetic-30fps', 'synthetic seed 12', synthetic(12, 400, 14), 30)
    run('synthetic-10fps', 'synthetic seed 7', synthetic(7, 300, 24), 10)
    # close to the camera: large fast-changing boxes at the frame's edges, lost and found at the buffer's edge
    for seed, rate, clip in ((1, 30.303, True), (8, 12.5, False), (7, 29.97, True), (4, 7.5, True), (5, 30, False)):
        run(f'close-up-{rate}fps-{"clipped" if clip else "unclipped"}', f'close_up seed {seed}', close_up(seed, 200, rate, clip), rate)
    run('crowd-duplicates-30fps', 'crowd seed 3', crowd(3, 40, 25), 30)

if __name__ == '__main__':
    main()
