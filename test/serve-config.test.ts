/** The service's stream configs: each mistake refused naming its field; credentials redacted. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfig, checkStream, readConfigFile, redactSource } from '../dist/serve/index.js';
import { COCO_CLASSES } from '../dist/index.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'deimv2-serve-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const video = path.join(tmp, 'clip.mp4');
writeFileSync(video, 'not empty');
const context = { allowDirs: [tmp], classes: COCO_CLASSES };
const cam = 'rtsp://127.0.0.1:8554/cam';

describe('stream configs', () => {
  it('accepts the vocabulary of detect and fills in track', () => {
    expect(checkStream({ id: 'a', source: cam, lines: ['0,1,2,3:gate'], classes: 'person,car', threshold: 0.3, maxFps: 5 }, context)).toEqual(
      { id: 'a', source: cam, live: true, lines: ['0,1,2,3:gate'], track: true, classes: ['person', 'car'], threshold: 0.3, maxFps: 5 });
    expect(checkStream({ id: 'f', source: video }, context)).toMatchObject({ live: false, track: false });
  });

  const bad: Array<[string, unknown, RegExp]> = [
    ['no id', { source: cam }, /^id: must be 1 to 64 letters/],
    ['an id with a slash', { id: 'a/b', source: cam }, /^id: /],
    ['an unknown field', { id: 'a', source: cam, lnes: [] }, /^lnes: unknown field/],
    ['a refused protocol', { id: 'a', source: 'file:/etc/passwd' }, /^source: .*"file:" protocol is not accepted/],
    ['a file outside --allow-dir', { id: 'a', source: '/etc/hostname' }, /^source: \/etc\/hostname is not under an --allow-dir/],
    ['a missing file', { id: 'a', source: path.join(tmp, 'missing.mp4') }, /^source: Video not found/],
    ['a bad line', { id: 'a', source: cam, lines: ['0,0,1,1', '5,5,5,5'] }, /^lines\[1\]: --line "5,5,5,5": its two ends are the same point/],
    ['a bad zone', { id: 'a', source: cam, zones: ['0,0,1,1'] }, /^zones\[0\]: --zone "0,0,1,1": needs at least 3 points/],
    ['lines without tracking', { id: 'a', source: cam, track: false, lines: ['0,0,1,1'] }, /^track: lines and zones count tracks/],
    ['a threshold above 1', { id: 'a', source: cam, threshold: 2 }, /^threshold: threshold must be a number from 0 to 1/],
    ['an unknown class', { id: 'a', source: cam, classes: ['unicorn'] }, /^classes: /],
    ['maxFps 0', { id: 'a', source: cam, maxFps: 0 }, /^maxFps: must be a number above 0/],
    ['an unknown tracking option', { id: 'a', source: cam, track: true, tracking: { buffer: 3 } }, /^tracking\.buffer: unknown tracking option/],
  ];
  for (const [what, config, message] of bad) {
    it(`refuses ${what}, naming the field`, () => {
      expect(() => checkStream(config, context)).toThrow(message);
      expect(() => checkConfig({ streams: [{ id: 'ok', source: cam }, config] }, context)).toThrow(new RegExp(`^streams\\[1\\]\\.${message.source.slice(1)}`));
    });
  }

  it('refuses two streams with one id, and files when no --allow-dir is given', () => {
    expect(() => checkConfig({ streams: [{ id: 'a', source: cam }, { id: 'a', source: cam }] }, context)).toThrow(/^streams\[1\]\.id: "a" is used by another stream/);
    expect(() => checkStream({ id: 'a', source: video }, { allowDirs: [] })).toThrow(/^source: local files are not allowed \(start the service with --allow-dir/);
  });

  it('reads YAML and JSON files; a broken file is ERR_INPUT_FORMAT naming it', async () => {
    const yaml = path.join(tmp, 's.yaml');
    writeFileSync(yaml, `streams:\n  - id: a\n    source: ${cam}\n    lines: ["0,1,2,3"]\n`);
    expect(await readConfigFile(yaml, context)).toHaveLength(1);
    writeFileSync(yaml, 'streams: [ {id: a, source: x');
    await expect(readConfigFile(yaml, context)).rejects.toMatchObject({ code: 'ERR_INPUT_FORMAT', message: expect.stringContaining(yaml) });
    const json = path.join(tmp, 's.json');
    writeFileSync(json, '{"streams": [');
    await expect(readConfigFile(json, context)).rejects.toMatchObject({ code: 'ERR_INPUT_FORMAT' });
  });
});

describe('redaction', () => {
  it('replaces user names, passwords and secret query values in source URLs', () => {
    expect(redactSource('rtsp://admin:hunter2@10.0.0.1:554/s')).toBe('rtsp://***@10.0.0.1:554/s');
    expect(redactSource('rtsp://admin@10.0.0.1/s')).toBe('rtsp://***@10.0.0.1/s');
    expect(redactSource('https://cam.example/live.m3u8?token=abc&x=1')).toBe('https://cam.example/live.m3u8?token=***&x=1');
    expect(redactSource('rtsp://10.0.0.1/s')).toBe('rtsp://10.0.0.1/s');
    // A message quoting the URL (ffmpeg's errors do) is redacted too.
    expect(() => checkStream({ id: 'a', source: 'rtsp:/admin:hunter2@x' }, context)).toThrow(/^source: /);
    try {
      checkStream({ id: 'a', source: 'rtsp:/admin:hunter2@x' }, context);
    } catch (e) {
      expect(String(e)).not.toContain('hunter2');
    }
  });
});
