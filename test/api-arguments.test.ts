/**
 * Arguments of the wrong kind get a DeimError with a code, never a raw TypeError; numeric CLI
 * options take plain decimal text only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { detectVideo } from '../dist/video/index.js';
import { deimv2 } from './helpers/cli.js';
import { MODEL_DIR, ROOT } from './helpers/paths.js';
import path from 'node:path';

const EXAMPLE = path.join(ROOT, 'examples/example.jpg');

describe('API arguments', () => {
  it('Detector.create with null, an array, a number or a string: ERR_INVALID_ARGUMENT (was a TypeError)', async () => {
    for (const bad of [null, [], 5, 'atto']) {
      await expect(Detector.create(bad as never)).rejects.toMatchObject({ name: 'DeimError', code: 'ERR_INVALID_ARGUMENT' });
    }
  });

  let detector: Detector;
  beforeAll(async () => {
    detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR });
  });
  afterAll(async () => detector?.close());

  it('detectVideo with a signal that is not an AbortSignal, or null options: ERR_INVALID_ARGUMENT (was a TypeError)', () => {
    expect(() => detectVideo(detector, 'clip.mp4', { signal: { aborted: false } as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/AbortSignal/) }));
    expect(() => detectVideo(detector, 'clip.mp4', null as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });
});

describe('numeric CLI options', () => {
  it('--threshold 0x1, " 1", Infinity and 0b1 are refused (0x1 was read as 1); 1e-1 and .5 are taken', async () => {
    for (const bad of ['0x1', ' 1', 'Infinity', '0b1', '']) {
      const r = await deimv2(['detect', EXAMPLE, '--backend', 'cpu', '--quiet', '--threshold', bad]);
      expect(r.code, bad).not.toBe(0);
      expect(r.stderr).toMatch(/--threshold must be a number from 0 to 1.*ERR_INVALID_ARGUMENT/);
    }
    for (const good of ['1e-1', '.5']) {
      const r = await deimv2(['detect', EXAMPLE, '--backend', 'cpu', '--quiet', '--threshold', good, '--json', '-']);
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it('integer options refuse hex too (--threads 0x2)', async () => {
    const r = await deimv2(['detect', EXAMPLE, '--backend', 'cpu', '--quiet', '--threads', '0x2']);
    expect(r.stderr).toMatch(/--threads must be an integer.*ERR_INVALID_ARGUMENT/);
  });
});
