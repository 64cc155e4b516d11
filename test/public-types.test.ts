/**
 * The published declarations compile on their own: a TypeScript user with `strict` and without
 * `skipLibCheck` imports the package and gets no errors (onnx-proto's declarations, which need
 * protobufjs' global `Long`, used to leak in through dist/prepare/*.d.ts: 24 errors).
 * Runs the tsc of node_modules on a tiny consumer in a temporary folder.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

const CONSUMER = `
import {
  Detector, DeimError, isDeimError, detectVideo, drawDetections, layoutCaptions, prepareModel, decodeBuffer,
  type DetectionResult, type DetectionFailure, type Detection, type DetectorOptions, type CaptionLayout, type PrepareResult,
} from 'deimv2';

const options: DetectorOptions = { model: 'atto', backend: 'cpu' };
export async function main(): Promise<number> {
  const detector = await Detector.create(options);
  try {
    const result = await detector.detect('photo.jpg');
    const many: Array<DetectionResult | DetectionFailure> = await detector.detectBatch(['a.jpg']);
    const first: Detection | undefined = result.detections[0];
    const captions: CaptionLayout[] = layoutCaptions(result, result.detections);
    const image = await decodeBuffer(new Uint8Array(4), 'x');
    drawDetections({ data: image.data, width: image.width, height: image.height, channels: 3 }, result.detections);
    for await (const frame of detectVideo(detector, 'clip.mp4')) void frame.detections.length;
    const prepared: PrepareResult = await prepareModel('atto');
    return many.length + (first?.score ?? 0) + captions.length + prepared.bytes.length;
  } catch (e) {
    if (isDeimError(e) && e instanceof DeimError) return e.code.length;
    throw e;
  } finally {
    await detector.close();
  }
}
`;

describe('published type declarations', () => {
  it('compile for a strict consumer without skipLibCheck', () => {
    const dir = tempDir('deimv2-types-');
    mkdirSync(path.join(dir, 'node_modules'));
    symlinkSync(ROOT, path.join(dir, 'node_modules', 'deimv2'), 'dir');
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    writeFileSync(path.join(dir, 'main.ts'), CONSUMER);
    writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          skipLibCheck: false,
          noEmit: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          types: ['node'],
          typeRoots: [path.join(ROOT, 'node_modules', '@types')],
        },
        files: ['main.ts'],
      }),
    );
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', timeout: 100_000 });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('no declaration file in dist refers to onnx-proto', () => {
    const offenders: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.d.ts') && readFileSync(p, 'utf8').includes('onnx-proto')) offenders.push(path.relative(ROOT, p));
      }
    };
    walk(path.join(ROOT, 'dist'));
    expect(offenders).toEqual([]);
  });
});
