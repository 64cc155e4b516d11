/**
 * A full disk during a run: the run fails with ERR_OUTPUT_WRITE, and files from an earlier run
 * under the same names stay byte for byte as they were (before: 0-byte or truncated), and a failed
 * run leaves no new file under its names. Root only (a tiny tmpfs).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deimv2 } from './helpers/cli.js';
import { tinyDisk } from './helpers/disk.js';
import { tempDir } from './helpers/images.js';
import { SHARED } from './helpers/paths.js';

const disk = tinyDisk('96k');
const CAR = path.join(SHARED, 'videos/car-detection.mp4');

describe.skipIf(!disk)('full disk: earlier outputs are kept as they were', () => {
  it('deimv2 track -o t.jsonl --mot t.txt', async () => {
    const dets = path.join(tempDir(), 'dets.jsonl');
    let text = '';
    for (let f = 0; f < 400; f++) {
      const detections = Array.from({ length: 12 }, (_, k) => ({ classId: 0, score: 0.9, box: [10 + 40 * k + f * 0.5, 10 + k, 40 + 40 * k + f * 0.5, 80 + k] }));
      text += JSON.stringify({ frame: f, pts: f / 30, detections }) + '\n';
    }
    writeFileSync(dets, text);
    const t = path.join(disk!, 't.jsonl');
    const mot = path.join(disk!, 't.txt');
    writeFileSync(t, 'earlier tracks\n');
    writeFileSync(mot, 'earlier mot\n');
    const r = await deimv2(['track', '-d', dets, '-o', t, '--mot', mot, '--quiet']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_OUTPUT_WRITE/);
    expect(readFileSync(t, 'utf8')).toBe('earlier tracks\n');
    expect(readFileSync(mot, 'utf8')).toBe('earlier mot\n');
    expect(readdirSync(disk!).sort()).toEqual(['t.jsonl', 't.txt']);
  });

  it('deimv2 detect clip.mp4 --json v.jsonl', async () => {
    const v = path.join(disk!, 'v.jsonl');
    writeFileSync(v, 'earlier frames\n');
    const r = await deimv2(['detect', CAR, '--json', v, '--backend', 'cpu', '--quiet', '--threshold', '0.05']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/ERR_OUTPUT_WRITE/);
    expect(readFileSync(v, 'utf8')).toBe('earlier frames\n');
    expect(readdirSync(disk!).filter((f) => f.startsWith('v.'))).toEqual(['v.jsonl']);
  });
});
