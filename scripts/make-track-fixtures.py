#!/usr/bin/env python3
"""Golden fixtures for the tracker: runs the reference ByteTrack on detection sequences.

The reference is ifzhang/ByteTrack (yolox/tracker/byte_tracker.py, matching.py, kalman_filter.py,
basetrack.py), read from a checkout OUTSIDE this repository (nothing of it is committed):

    git -C <ByteTrack clone> archive HEAD yolox/tracker | tar -x -C /work/scratch/h12/ByteTrack
    /usr/bin/python3 scripts/make-track-fixtures.py --bytetrack /work/scratch/h12/ByteTrack \
        --video car-atto=/path/car.jsonl --video traffic-atto=/path/traffic.jsonl

Needs numpy and scipy (Debian's python3-numpy, python3-scipy). The reference's compiled or heavy
imports are stood in for, and nothing else is changed:
  - cython_bbox.bbox_overlaps: IoU with the +1 pixel convention, areas (x2 - x1 + 1) * (y2 - y1 + 1),
    written out below in the same operation order.
  - lap.lapjv(cost, extend_cost=True, cost_limit=t): scipy.optimize.linear_sum_assignment on the
    augmented (rows + cols) square matrix in which leaving a row or a column unmatched costs t / 2
    (dummy-dummy pairs cost 0). This has the same optimal matchings as lapjv; where several
    matchings are equally good (exactly equal costs), scipy's pick is the one recorded here.
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
only scores > 0.1); track boxes are rounded to 1e-4 px.
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


def lapjv(cost, extend_cost=False, cost_limit=np.inf, return_cost=True):
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


def load_reference(path):
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


def write_fixture(name, source, frames, frame_rate, BYTETracker, BaseTrack, out_dir):
    per_class = run_reference(BYTETracker, BaseTrack, frames, frame_rate, False)
    agnostic = run_reference(BYTETracker, BaseTrack, frames, frame_rate, True)
    path = os.path.join(out_dir, f'{name}.jsonl')
    with open(path, 'w') as f:
        header = dict(sequence=name, source=source, frameRate=frame_rate, frames=len(frames), trackThresh=Args.track_thresh, trackBuffer=Args.track_buffer,
                      matchThresh=Args.match_thresh, minBoxArea=MIN_BOX_AREA, reference='ifzhang/ByteTrack yolox/tracker (see scripts/make-track-fixtures.py)')
        f.write(json.dumps(header) + '\n')
        for i, dets in enumerate(frames):
            f.write(json.dumps(dict(frame=i + 1, dets=dets, tracks=per_class[i], agnostic=agnostic[i]), separators=(',', ':')) + '\n')
    ids_pc = {r[0] for rows in per_class for r in rows}
    ids_ag = {r[0] for rows in agnostic for r in rows}
    print(f'{path}: {len(frames)} frames, {sum(map(len, frames))} detections, per-class {sum(map(len, per_class))} boxes / {len(ids_pc)} ids, '
          f'agnostic {sum(map(len, agnostic))} boxes / {len(ids_ag)} ids, {os.path.getsize(path)} bytes')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--bytetrack', required=True, help='folder holding yolox/tracker of ifzhang/ByteTrack')
    ap.add_argument('--video', action='append', default=[], help='NAME=detections.jsonl (deimv2 detect video --json, threshold 0.1)')
    ap.add_argument('--out', default=os.path.join(ROOT, 'test', 'fixtures', 'track'))
    a = ap.parse_args()
    BYTETracker, BaseTrack = load_reference(a.bytetrack)
    os.makedirs(a.out, exist_ok=True)
    for spec in a.video:
        name, path = spec.split('=', 1)
        write_fixture(name, os.path.basename(path), read_detections(path), 30, BYTETracker, BaseTrack, a.out)
    write_fixture('synthetic-30fps', 'synthetic seed 12', synthetic(12, 400, 14), 30, BYTETracker, BaseTrack, a.out)
    write_fixture('synthetic-10fps', 'synthetic seed 7', synthetic(7, 300, 24), 10, BYTETracker, BaseTrack, a.out)


if __name__ == '__main__':
    main()
