/**
 * The package as a user gets it: `npm pack` the repository, install the tarball into an empty
 * project (npm ci --offline from a lockfile made of this repository's: the same dependency
 * versions, from npm's cache), then
 *   - compile a consumer of each entry (`deimv2`, `deimv2/queue`, `deimv2/serve`) with the installed
 *     tsc, `strict` and without `skipLibCheck`: no error, and no declaration of ioredis or BullMQ
 *     read (ioredis's declarations import the untyped 'redis-errors', an error for such a user;
 *     the main entry used to re-export the queue and pulled 25 of ioredis's files in);
 *   - run the main-entry consumer: Atto (the model the package ships) on the CPU on example.jpg;
 *   - check what each entry loads at run time: `import('deimv2')` loads neither bullmq nor
 *     ioredis, `deimv2/queue` does (a resolve hook logs every module resolved, require.cache
 *     lists the CommonJS ones).
 * The pack and the install run once, in beforeAll.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXAMPLE, ROOT } from './helpers/paths.js';
import { tempDir } from './helpers/images.js';

/** The main entry, broadly: the types and functions a user of the detector reaches for (type-checked only). */
const MAIN_API = `
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

/** The main-entry consumer that runs: detects one image and prints what it found, and with what. */
const MAIN_RUN = `
import { Detector, type DetectionResult } from 'deimv2';

const detector = await Detector.create({ model: 'atto', backend: 'cpu' });
try {
  const result: DetectionResult = await detector.detect(process.argv[2] ?? 'example.jpg');
  console.log(JSON.stringify({
    model: detector.modelPath,
    backend: detector.backendName,
    width: result.width,
    height: result.height,
    detections: result.detections.map((d) => ({ label: d.label, score: d.score, box: d.box })),
  }));
} finally {
  await detector.close();
}
`;

const QUEUE = `
import {
  DetectionQueue, DetectionWorker,
  type AddJob, type DetectionQueueOptions, type DetectionWorkerOptions, type QueueResult, type QueueStats, type RedisTarget,
} from 'deimv2/queue';
import { DeimError } from 'deimv2';

const redis: RedisTarget = { url: 'rediss://127.0.0.1:6380/1', tls: { rejectUnauthorized: true } };
export async function submit(images: string[]): Promise<QueueResult[]> {
  const options: DetectionQueueOptions = { redis, queue: 'detect' };
  const q = new DetectionQueue(options);
  try {
    const jobs: AddJob[] = images.map((image) => ({ image, options: { threshold: 0.5 } }));
    const ids = await q.addMany(jobs);
    const out: QueueResult[] = [];
    for await (const r of q.results(ids)) out.push(r);
    const stats: QueueStats = await q.stats();
    return stats.workers.length >= 0 ? out : [];
  } catch (e) {
    if (e instanceof DeimError) return [];
    throw e;
  } finally {
    await q.close();
  }
}
export async function work(): Promise<void> {
  const options: DetectionWorkerOptions = { redis: 'redis://127.0.0.1:6379', queue: 'detect', detectorOptions: { model: 'atto', backend: 'cpu' } };
  const worker = await DetectionWorker.start(options);
  await worker.close();
}
`;

const SERVE = `
import { startService } from 'deimv2/serve';

export async function serve(): Promise<void> {
  const service = await startService({ streams: [{ id: 'cam', source: 'rtsp://127.0.0.1:8554/cam' }], port: 0 });
  await service.close();
}
`;

/** Records every module resolved (the hooks run on their own thread; a synchronous append is complete when import() settles). */
const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.DEIMV2_RESOLVE_LOG, r.url + '\\n');
  return r;
}
`;
const REGISTER = `import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n`;
/** Imports the entry named, then prints the resolved URLs and the CommonJS modules loaded. */
const PROBE = `
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
await import(process.argv[2]);
const require = createRequire(import.meta.url);
const resolved = readFileSync(process.env.DEIMV2_RESOLVE_LOG, 'utf8').split('\\n').filter(Boolean);
console.log(JSON.stringify({ resolved, cjs: Object.keys(require.cache) }));
`;

/** A file of ioredis, BullMQ or their helpers. */
const REDIS_PACKAGE = /[\\/]node_modules[\\/](ioredis|bullmq|redis-errors|@ioredis)[\\/]/;

const output = (r: SpawnSyncReturns<string>) => `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`;

let dir = '';
let app = '';
let packedFiles: string[] = [];
/** A clean environment for the consumer: nothing of this repository's (no model folder, no NODE_OPTIONS). */
let env: NodeJS.ProcessEnv = {};

/** The consumer's lockfile: deimv2 from the tarball, its dependencies as this repository's lockfile pins them. */
function consumerLock(tarball: string): { manifest: object; lock: object } {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  const tools = { typescript: lock.packages['node_modules/typescript'].version, '@types/node': lock.packages['node_modules/@types/node'].version };
  const manifest = { name: 'consumer', private: true, type: 'module', dependencies: { deimv2: `file:${tarball}` }, devDependencies: tools };
  const packages: Record<string, unknown> = { '': manifest };
  packages['node_modules/deimv2'] = { version: pkg.version, resolved: `file:${tarball}`, license: pkg.license, dependencies: pkg.dependencies, hasInstallScript: true, bin: pkg.bin, engines: pkg.engines };
  for (const [key, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) {
    if (key !== '' && !entry.dev) packages[key] = entry;
  }
  for (const name of Object.keys(tools)) packages[`node_modules/${name}`] = lock.packages[`node_modules/${name}`];
  return { manifest, lock: { name: 'consumer', lockfileVersion: 3, requires: true, packages } };
}

describe('the packed package, installed into an empty project', () => {
  beforeAll(() => {
    dir = tempDir('deimv2-consumer-');
    app = path.join(dir, 'app');
    env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(DEIMV2_|NODE_OPTIONS$|VITEST|npm_)/.test(k)));
    // dist is built before the tests run (npm test builds it), so prepare (tsc) need not run again.
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', timeout: 120_000, env });
    expect(pack.status, output(pack)).toBe(0);
    const [packed] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packedFiles = packed.files.map((f) => f.path);
    mkdirSync(app);
    const { manifest, lock } = consumerLock(`../${packed.filename}`);
    writeFileSync(path.join(app, 'package.json'), JSON.stringify(manifest, null, 2));
    writeFileSync(path.join(app, 'package-lock.json'), JSON.stringify(lock, null, 2));
    // DEIMV2_SKIP_NATIVE: the install script says so and builds nothing (the CPU backend needs no addon);
    // ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node downloads no CUDA binaries.
    const installEnv = { ...env, DEIMV2_SKIP_NATIVE: '1', ONNXRUNTIME_NODE_INSTALL: 'skip' };
    const install = (mode: string) =>
      spawnSync('npm', ['ci', mode, '--no-audit', '--no-fund', '--foreground-scripts'], { cwd: app, encoding: 'utf8', timeout: 240_000, env: installEnv });
    let installed = install('--offline');
    // A cache without some tarball (npm ci ran with another cache): fetch what is missing.
    if (installed.status !== 0 && /ENOTCACHED/.test(output(installed))) installed = install('--prefer-offline');
    expect(installed.status, output(installed)).toBe(0);
    expect(output(installed)).toContain('deimv2: DEIMV2_SKIP_NATIVE is set');

    writeFileSync(path.join(app, 'api.ts'), MAIN_API);
    writeFileSync(path.join(app, 'main.ts'), MAIN_RUN);
    writeFileSync(path.join(app, 'queue.ts'), QUEUE);
    writeFileSync(path.join(app, 'serve.ts'), SERVE);
    writeFileSync(path.join(app, 'hooks.mjs'), HOOKS);
    writeFileSync(path.join(app, 'register.mjs'), REGISTER);
    writeFileSync(path.join(app, 'probe.mjs'), PROBE);
    writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, skipLibCheck: false, target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', types: ['node'], outDir: 'out' },
        files: ['api.ts', 'main.ts', 'queue.ts', 'serve.ts'],
      }),
    );
  }, 400_000);
  // The install is some 400 MB (onnxruntime-node's libraries).
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the tarball holds the built entries and the Atto model', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'dist/queue/index.js', 'dist/queue/index.d.ts', 'dist/serve/index.js', 'dist/serve/index.d.ts', 'models/deimv2_hgnetv2_atto_coco.onnx', 'scripts/install-native.js']) {
      expect(packedFiles).toContain(f);
    }
    const installed = JSON.parse(readFileSync(path.join(app, 'node_modules', 'deimv2', 'package.json'), 'utf8'));
    expect(Object.keys(installed.exports)).toEqual(expect.arrayContaining(['.', './queue', './serve']));
  });

  it('consumers of deimv2, deimv2/queue and deimv2/serve compile with strict and without skipLibCheck, reading no declaration of ioredis or BullMQ', () => {
    const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--listFiles'], { cwd: app, encoding: 'utf8', timeout: 300_000, env });
    const lines = r.stdout.split('\n').filter(Boolean);
    const errors = lines.filter((l) => /error TS\d+/.test(l));
    const files = lines.filter((l) => !/error TS\d+/.test(l));
    expect({ errors, redisDeclarations: files.filter((f) => REDIS_PACKAGE.test(f)) }).toEqual({ errors: [], redisDeclarations: [] });
    expect(r.status, output(r)).toBe(0);
    // The package's declarations came from the installed copy.
    for (const entry of ['dist/index.d.ts', 'dist/queue/index.d.ts', 'dist/serve/index.d.ts']) {
      expect(files).toContain(path.join(app, 'node_modules', 'deimv2', entry).split(path.sep).join('/'));
    }
  }, 320_000);

  it('the main-entry consumer runs: Atto, shipped in the package, finds the persons in example.jpg on the CPU', () => {
    const r = spawnSync(process.execPath, [path.join(app, 'out', 'main.js'), EXAMPLE], { cwd: app, encoding: 'utf8', timeout: 120_000, env });
    expect(r.status, output(r)).toBe(0);
    const printed = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(printed).toMatchObject({ backend: 'cpu', width: 500, height: 375, model: path.join(app, 'node_modules', 'deimv2', 'models', 'deimv2_hgnetv2_atto_coco.onnx') });
    expect(printed.detections.filter((d: { label: string }) => d.label === 'person').length).toBeGreaterThanOrEqual(3);
  }, 130_000);

  it("import('deimv2') and import('deimv2/serve') load neither bullmq nor ioredis; import('deimv2/queue') loads both", () => {
    const loaded = (entry: string): string[] => {
      const log = path.join(dir, `resolved-${entry.replace(/\W/g, '-')}.log`);
      writeFileSync(log, '');
      const r = spawnSync(process.execPath, ['--import', './register.mjs', 'probe.mjs', entry], { cwd: app, encoding: 'utf8', timeout: 120_000, env: { ...env, DEIMV2_RESOLVE_LOG: log } });
      expect(r.status, output(r)).toBe(0);
      const { resolved, cjs } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { resolved: string[]; cjs: string[] };
      // The probe itself works: the entry came from the installed package.
      expect(resolved.some((u) => u.includes('/node_modules/deimv2/dist/'))).toBe(true);
      return [...resolved, ...cjs].filter((f) => REDIS_PACKAGE.test(f));
    };
    expect(loaded('deimv2')).toEqual([]);
    expect(loaded('deimv2/serve')).toEqual([]);
    const queue = loaded('deimv2/queue');
    expect(queue.some((f) => /[\\/]node_modules[\\/]bullmq[\\/]/.test(f))).toBe(true);
    expect(queue.some((f) => /[\\/]node_modules[\\/]ioredis[\\/]/.test(f))).toBe(true);
  }, 130_000);
});
