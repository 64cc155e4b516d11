/**
 * Where inputs may come from. Video sources given by the API are local files, image sequences,
 * webcams, or URLs of the streaming protocols; ffmpeg's pseudo-protocols (concat:, file:,
 * subfile:, pipe:, data:, ...) are refused before ffmpeg runs. `eval --images` reads nothing
 * outside the images folder, whatever an annotation's file_name says.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Detector, DeimError } from '../dist/index.js';
import { detectVideo } from '../dist/video/index.js';
import { checkLocalSource, ffmpegInputOptions, ffmpegInputPath } from '../dist/video/source.js';
import { findAnnotatedImages } from '../dist/eval/detect-images.js';
import { ATTO, CLI, EXAMPLE } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';
import { rejection } from './helpers/rejection.js';

const dir = tempDir('deimv2-paths-');


/** A 4-frame 64x48 clip made by ffmpeg. */
function clip(file: string): string {
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=4:duration=1', '-pix_fmt', 'yuv420p', ffmpegInputPath(file)]);
  return file;
}

describe('video sources', () => {
  const a = clip(path.join(dir, 'a.mp4'));
  const b = clip(path.join(dir, 'b.mp4'));

  it('ffmpeg pseudo-protocols are refused with ERR_VIDEO_SOURCE naming the source', () => {
    for (const source of [`concat:${a}|${b}`, `file:${a}`, `subfile:,start,0,end,100,:${a}`, 'pipe:0', 'data:video/mp4;base64,AAAA', `async:${a}`, `cache:${a}`, `crypto:${a}`, 'gopher://x/', 'ftp://example.com/clip.mp4']) {
      let error: unknown;
      try {
        checkLocalSource(source);
      } catch (e) {
        error = e;
      }
      expect(error, source).toBeInstanceOf(DeimError);
      expect((error as DeimError).code).toBe('ERR_VIDEO_SOURCE');
      expect((error as DeimError).message).toContain(source);
      expect((error as DeimError).message).toMatch(/protocol is not accepted as a video source; give a local file.*rtsp, rtsps, rtmp/);
    }
    expect(() => checkLocalSource('rtsp:/cam')).toThrow(/not a valid rtsp URL/);
  });

  it('stream URLs and local files pass the check', () => {
    for (const url of ['rtsp://cam/1', 'rtsps://cam/1', 'rtmp://h/app', 'http://h/x.ts', 'https://h/x.mp4', 'udp://239.0.0.1:1234', 'srt://h:9000', 'tcp://h:9000']) {
      expect(() => checkLocalSource(url), url).not.toThrow();
    }
    expect(() => checkLocalSource(a)).not.toThrow();
    expect(() => checkLocalSource(path.join(dir, '%04d.png'))).not.toThrow();
  });

  it('through detectVideo: concat: is refused before ffmpeg reads anything', async () => {
    const detector = await Detector.create({ model: ATTO, backend: 'cpu', threads: 1 });
    try {
      const e = await rejection(detectVideo(detector, `concat:${a}|${b}`));
      expect(e.code).toBe('ERR_VIDEO_SOURCE');
      // A local file whose name looks like a protocol is that file, never the protocol.
      const odd = path.join(dir, 'odd');
      mkdirSync(odd);
      copyFileSync(a, path.join(odd, 'concat:x.mp4'));
      const frames = [];
      const cwd = process.cwd();
      process.chdir(odd);
      try {
        for await (const f of detectVideo(detector, 'concat:x.mp4')) frames.push(f.frame);
      } finally {
        process.chdir(cwd);
      }
      expect(frames).toEqual([0, 1, 2, 3]);
    } finally {
      await detector.close();
    }
  });

  it('local paths that ffmpeg would misread are made explicit; local files read local files only', () => {
    expect(ffmpegInputPath('concat:x.mp4')).toBe(`.${path.sep}concat:x.mp4`);
    expect(ffmpegInputPath('-')).toBe(`.${path.sep}-`);
    expect(ffmpegInputPath('clip.mp4')).toBe('clip.mp4');
    expect(ffmpegInputPath('/abs/concat:x.mp4')).toBe('/abs/concat:x.mp4');
    expect(ffmpegInputPath('rtsp://cam/1')).toBe('rtsp://cam/1');
    expect(ffmpegInputOptions('clip.mp4')).toEqual(['-protocol_whitelist', 'file']);
    // A URL gets its own scheme's protocols (test/video-protocols.test.ts), never file.
    expect(ffmpegInputOptions('rtsp://cam/1').slice(0, 2)).toEqual(['-protocol_whitelist', 'rtsp,rtsps,rtp,srtp,udp,tcp,tls']);
  });

  it('a local HLS playlist cannot make ffmpeg fetch a URL', async () => {
    const m3u8 = path.join(dir, 'list.m3u8');
    writeFileSync(m3u8, '#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nhttp://127.0.0.1:9/seg.ts\n#EXT-X-ENDLIST\n');
    const r = spawnSync('ffmpeg', ['-hide_banner', '-nostdin', ...ffmpegInputOptions(m3u8), '-i', ffmpegInputPath(m3u8), '-f', 'null', '-'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).toMatch(/not on whitelist|Protocol 'http' not on whitelist/);
  });
});

describe('eval --images stays inside the images folder', () => {
  const images = path.join(dir, 'images');
  const outside = path.join(dir, 'secret.jpg');
  beforeAll(() => {
    mkdirSync(images);
    copyFileSync(EXAMPLE, path.join(images, 'ok.jpg'));
    copyFileSync(EXAMPLE, outside);
  });
  const gt = (fileName: string) => ({
    images: [{ id: 1, file_name: 'ok.jpg', width: 500, height: 375 }, { id: 2, file_name: fileName, width: 500, height: 375 }],
    annotations: [],
    categories: [{ id: 1, name: 'person' }],
  });

  for (const name of ['../secret.jpg', 'sub/../../secret.jpg', outside]) {
    it(`file_name ${JSON.stringify(name.replace(dir, '<tmp>'))} is refused`, () => {
      let error: unknown;
      try {
        findAnnotatedImages(gt(name), images, { source: 'gt.json' });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(DeimError);
      expect((error as DeimError).code).toBe('ERR_EVAL_INPUT');
      expect((error as DeimError).message).toMatch(/^gt\.json: image 2 has file_name .* which leads outside the images folder/);
    });
  }

  it('names inside the folder (sub/../ok.jpg) are fine', () => {
    const { images: found } = findAnnotatedImages(gt('sub/../ok.jpg'), images);
    expect(found.map((i) => i.id)).toEqual([1, 2]);
  });

  it('the CLI refuses before any detection', () => {
    const ann = path.join(dir, 'gt.json');
    writeFileSync(ann, JSON.stringify(gt('../secret.jpg')));
    const r = spawnSync(process.execPath, [CLI, 'eval', '-m', ATTO, '-b', 'cpu', '-i', images, '-a', ann, '-q'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/image 2 has file_name "\.\.\/secret\.jpg", which leads outside the images folder/);
  });
});

