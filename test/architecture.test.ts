/**
 * The code's shape, checked so CI fails when it drifts: no import cycles (static or dynamic, as
 * madge sees them; `npm run lint` runs the same check), one seam between the Detector and the
 * execution paths, and nothing loaded at start-up that a run does not use.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import madge from 'madge';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './helpers/paths.js';

const SRC = path.join(ROOT, 'src');
let graph: Record<string, string[]>;
let circular: string[][];

beforeAll(async () => {
  const result = await madge(SRC, { fileExtensions: ['ts'], tsConfig: path.join(ROOT, 'tsconfig.json') });
  graph = result.obj();
  circular = result.circular();
}, 120_000);

/** Every module `from` reaches through static imports only (what loads with it). */
function staticClosure(from: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(path.join(SRC, file), 'utf8');
    for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'(\.[^']+)'/gms)) {
      visit(path.relative(SRC, path.resolve(path.dirname(path.join(SRC, file)), m[1]!.replace(/\.js$/, '.ts'))));
    }
  };
  visit(from);
  return seen;
}

const importsOf = (file: string) => graph[file] ?? [];

describe('architecture', () => {
  it('has no import cycles', () => {
    expect(Object.keys(graph).length).toBeGreaterThan(50);
    expect(circular.map((c) => c.join(' > '))).toEqual([]);
  });

  it('the Detector talks to runners through the seam only, and stays small', () => {
    const concrete = importsOf('detector.ts').filter((f) => /^(backends\/(cpu|tensorrt)\/|engine\/|pool\/worker)/.test(f));
    expect(concrete).toEqual([]);
    const text = readFileSync(path.join(SRC, 'detector.ts'), 'utf8');
    expect(text).not.toMatch(/TensorRtBackend|CpuSession|WorkerPool|mode: '(infer|preprocess|decode)'/);
    expect(text.split('\n').length).toBeLessThan(180);
  });

  it('pool workers never create sessions: only the CPU backend loads onnxruntime', () => {
    for (const [file, deps] of Object.entries(graph)) {
      if (file.startsWith('pool/')) expect(deps.filter((d) => d.startsWith('backends/')).filter((d) => d !== 'backends/types.ts'), file).toEqual([]);
    }
    // onnxruntime-node loads through cjs.ts's requireOrt() (or an import, in prepare/).
    const loaders = Object.keys(graph).filter((f) => /^import ort from 'onnxruntime-node'|requireOrt\(\)/m.test(readFileSync(path.join(SRC, f), 'utf8')) && f !== 'cjs.ts');
    expect(loaders.filter((f) => !f.startsWith('backends/cpu/') && !f.startsWith('prepare/'))).toEqual([]);
  });

  it('backends never import engines, runners or the Detector (engines sit above runners)', () => {
    for (const [file, deps] of Object.entries(graph)) {
      if (file.startsWith('backends/')) expect(deps.filter((d) => d.startsWith('engine/') || d === 'runners.ts' || d === 'detector.ts'), file).toEqual([]);
    }
  });

  it('the detect command loads no TensorRT, engine, prepare or eval code, and no decoder, until a run needs it', () => {
    const loaded = [...staticClosure('cli/commands/detect.ts')];
    // (backends/tensorrt/availability.ts is how `auto` decides; it loads the addon only when asked.)
    const heavy = loaded.filter((f) => /^(backends\/(cpu|tensorrt)\/|engine\/|prepare\/|eval\/)/.test(f));
    expect(heavy.filter((f) => !/^backends\/tensorrt\/(availability|native)\.ts$/.test(f))).toEqual([]);
    // A module that loads sharp when it loads (annotate/write.ts loads it in a function, on demand).
    const sharpLoaders = loaded.filter((f) => /^import sharp from 'sharp'|^const sharp = requireSharp\(\)/m.test(readFileSync(path.join(SRC, f), 'utf8')));
    expect(sharpLoaders).toEqual([]);
    const main = readFileSync(path.join(SRC, 'cli', 'main.ts'), 'utf8');
    expect(main).not.toMatch(/^import .* from '\.\/commands\//m);
  });

  it('an image run loads no video stages, ffmpeg, tracker or drawing code (they load when a video or --out needs them)', () => {
    for (const from of ['cli/commands/detect.ts', 'detector.ts']) {
      const loaded = [...staticClosure(from)];
      const video = loaded.filter((f) => /^video\/(frames|decoder|encoder|ffmpeg|probe|run|jsonl)\.ts$|^annotate\/(draw|overlays|font|captions)\.ts$/.test(f));
      expect(video, from).toEqual([]);
      // Tracking: only its option checks (track/check.ts, geometry.ts, the CLI's option table).
      expect(loaded.filter((f) => f.startsWith('track/') && !/^track\/(check|geometry|options)\.ts$/.test(f)), from).toEqual([]);
    }
    // The Detector's detectVideo still returns a VideoDetection at once: only its iteration loads the stages.
    expect(staticClosure('video/pipeline.ts').has('video/frames.ts')).toBe(false);
    expect(readFileSync(path.join(SRC, 'video', 'pipeline.ts'), 'utf8')).toMatch(/await import\('\.\/frames\.js'\)/);
  });
});
