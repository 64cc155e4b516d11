/** What travels through Redis: job options and data checks, default ids, failure codes, Redis URLs, allowed folders (no Redis needed). */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkJobData, checkJobId, checkJobOptions, decodeFailure, defaultJobId, encodeFailure } from '../dist/queue/jobs.js';
import { checkRedisTarget, redactRedisUrl } from '../dist/queue/connection.js';
import { checkOutputPath, isUnder, openJobImage, resolveAllowDirs } from '../dist/queue/sources.js';
import { tempDir } from './helpers/images.js';

describe('queue jobs', () => {
  it('checks job options like the CLI: ranges, types, unknown keys', () => {
    expect(checkJobOptions({ threshold: 0.25, maxDetections: 10, classes: [' person ', 'car'], annotate: '/out/a.png' })).toEqual({ threshold: 0.25, maxDetections: 10, classes: ['person', 'car'], annotate: '/out/a.png' });
    expect(checkJobOptions(undefined)).toEqual({});
    for (const bad of [{ threshold: 1.5 }, { threshold: 'x' }, { maxDetections: 0 }, { maxDetections: 2.5 }, { classes: 'person' }, { classes: [1] }, { annotate: 'relative.png' }, { annotate: 7 }, { constructor: 'x' }, { __proto__: { threshold: 1 }, x: 1 }, [], 'threshold=1']) {
      expect(() => checkJobOptions(bad), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
    }
    expect(() => checkJobOptions({ threshold: 2 })).toThrow(/threshold must be a number from 0 to 1, got 2/);
  });

  it('checks stored job data: version, image kind, absolute paths, http(s) only', () => {
    expect(checkJobData({ v: 1, image: { path: '/a.jpg' }, name: 'a', options: {} })).toEqual({ v: 1, image: { path: '/a.jpg' }, name: 'a', options: {} });
    expect(checkJobData({ v: 1, image: { url: 'https://x.test/a.jpg' } }).name).toBe('https://x.test/a.jpg');
    expect(checkJobData({ v: 1, image: { bytes: 'AA==' }, name: 'a\u001b[31mred\nfake line' }).name).toBe('a?[31mred?fake line');
    expect(() => checkJobData({ v: 2, image: { path: '/a.jpg' } })).toThrow(/version 2/);
    expect(() => checkJobData({ v: 1, image: { path: 'a.jpg' } })).toThrow(/must be absolute/);
    expect(() => checkJobData({ v: 1, image: {} })).toThrow(/\{path\}, \{url\} or \{bytes\}/);
    expect(() => checkJobData(null)).toThrow(/must be an object/);
    for (const url of ['file:///etc/passwd', 'ftp://x/a.jpg', 'data:image/png;base64,AA==', 'javascript:alert(1)']) {
      expect(() => checkJobData({ v: 1, image: { url } }), url).toThrow(expect.objectContaining({ code: 'ERR_INPUT_NOT_ALLOWED' }));
    }
  });

  it('derives the default id from the image and the options, not from key order', () => {
    const a = defaultJobId({ path: '/x/a.jpg' }, undefined, { threshold: 0.5, classes: ['car'] });
    expect(a).toMatch(/^d2-[0-9a-f]{40}$/);
    expect(defaultJobId({ path: '/x/a.jpg' }, undefined, { classes: ['car'], threshold: 0.5 })).toBe(a);
    expect(defaultJobId({ path: '/x/b.jpg' }, undefined, { threshold: 0.5, classes: ['car'] })).not.toBe(a);
    expect(defaultJobId({ path: '/x/a.jpg' }, undefined, { threshold: 0.6, classes: ['car'] })).not.toBe(a);
    const bytes = Buffer.from('image bytes');
    expect(defaultJobId({ bytes: '' }, bytes, {})).toBe(defaultJobId({ bytes: 'other' }, Buffer.from('image bytes'), {}));
    expect(defaultJobId({ bytes: '' }, bytes, {})).not.toBe(defaultJobId({ bytes: '' }, Buffer.from('image bytez'), {}));
    expect(checkJobId('my-job_1.a')).toBe('my-job_1.a');
    for (const bad of ['', '123', 'a:b', 'a b', 'x'.repeat(300), 5]) expect(() => checkJobId(bad), String(bad)).toThrow(/job id/);
  });

  it('carries error codes through failedReason', () => {
    expect(decodeFailure(encodeFailure('ERR_INPUT_UNREADABLE', 'a.jpg: not an image\nmore'))).toEqual({ code: 'ERR_INPUT_UNREADABLE', message: 'a.jpg: not an image\nmore' });
    expect(decodeFailure('job stalled more than allowable limit')).toEqual({ code: 'ERR_QUEUE', message: 'job stalled more than allowable limit' });
  });

  it('takes redis:// and rediss:// URLs with password and database; hides the password in messages', () => {
    expect(checkRedisTarget('rediss://:pw@host:6380/3').url).toBe('rediss://:pw@host:6380/3');
    expect(redactRedisUrl('redis://user:secret@host:6379/2')).toBe('redis://user:***@host:6379/2');
    expect(() => checkRedisTarget('http://host')).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(() => checkRedisTarget('redis://host/abc')).toThrow(/database number/);
    expect(() => checkRedisTarget('not a url')).toThrow(/not a URL/);
  });

  it('resolves paths and symlinks before checking the allowed folders', async () => {
    const root = tempDir();
    const allowed = path.join(root, 'allowed');
    const other = path.join(root, 'allowed-not');
    mkdirSync(allowed);
    mkdirSync(other);
    writeFileSync(path.join(allowed, 'a.jpg'), 'x');
    writeFileSync(path.join(other, 'b.jpg'), 'x');
    symlinkSync(path.join(other, 'b.jpg'), path.join(allowed, 'link.jpg'));
    symlinkSync(other, path.join(allowed, 'dirlink'));
    const roots = await resolveAllowDirs([allowed]);
    expect(isUnder(path.join(roots[0]!, 'a.jpg'), roots)).toBe(true);
    expect(isUnder(path.join(root, 'allowed-not', 'b.jpg'), roots)).toBe(false); // a sibling sharing the prefix
    const policy = { allowDirs: roots, maxBytes: 100, urlTimeoutMs: 1000 };
    await expect(openJobImage({ path: path.join(allowed, 'a.jpg') }, 'a', policy)).resolves.toMatchObject({ realPath: path.join(roots[0]!, 'a.jpg') });
    for (const p of [path.join(allowed, 'link.jpg'), path.join(allowed, 'dirlink', 'b.jpg'), path.join(other, 'b.jpg'), `${allowed}/../allowed-not/b.jpg`]) {
      await expect(openJobImage({ path: p }, p, policy), p).rejects.toMatchObject({ code: 'ERR_INPUT_NOT_ALLOWED' });
    }
    await expect(openJobImage({ path: path.join(allowed, 'a.jpg') }, 'a', { ...policy, allowDirs: [] })).rejects.toThrow(/allows no folders \(start it with --allow-dir/);
    await expect(openJobImage({ bytes: Buffer.alloc(200).toString('base64') }, 'big', policy)).rejects.toMatchObject({ code: 'ERR_INPUT_TOO_LARGE' });
    await expect(checkOutputPath(path.join(allowed, 'dirlink', 'out.png'), undefined, policy)).rejects.toMatchObject({ code: 'ERR_INPUT_NOT_ALLOWED' });
    await expect(checkOutputPath(path.join(allowed, 'new', 'deep', 'out.png'), undefined, policy)).resolves.toBe(path.join(roots[0]!, 'new', 'deep', 'out.png'));
    await expect(checkOutputPath(path.join(allowed, 'out.txt'), undefined, policy)).rejects.toThrow(/unknown image extension/);
    await expect(checkOutputPath(path.join(allowed, 'link.jpg'), path.join(other, 'b.jpg'), policy)).rejects.toThrow(/overwrite the job's input/);
    await expect(resolveAllowDirs([path.join(root, 'missing')])).rejects.toThrow(/--allow-dir/);
  });
});
