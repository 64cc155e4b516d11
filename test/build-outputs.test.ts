/**
 * `deimv2 build` without --record (the real TensorRT flow, run here on the simulated runtime):
 * every file it writes (the engine, its sidecar, the prepared graph, the timing cache) goes through
 * the output plan, so none can replace the model, a validation image or another of its outputs,
 * and unwritable targets are refused before any work (issue 9, section 1).
 * Before this, `--timing-cache model.onnx` replaced the model with a 31-byte timing cache.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ATTO, COCO_IMAGES } from './helpers/paths.js';
import { tinyDisk } from './helpers/disk.js';
import { runCli, tempDir } from './helpers/sim.js';

const tmp = tempDir('build-outputs');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const model = path.join(tmp, 'm.onnx');
copyFileSync(ATTO, model);
const hardLink = path.join(tmp, 'model-link.bin');
linkSync(model, hardLink);
const aFile = path.join(tmp, 'a-file');
writeFileSync(aFile, 'not a folder');
const images = path.join(tmp, 'images');
mkdirSync(images);
const image = path.join(images, '000000006818.jpg');
copyFileSync(path.join(COCO_IMAGES, '000000006818.jpg'), image);

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const before = { model: sha(model), image: sha(image) };
const build = (out: string, extra: string[]) => runCli(['build', '--model', model, '--out', out, '--precision', 'fp32', '-q', ...extra]);

describe('deimv2 build (not recorded): outputs planned before writing', () => {
  it('refuses a timing cache that is the model, a hard link of it, or a validation image; nothing is written', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--no-validate', '--timing-cache', model], /--timing-cache .*m\.onnx would overwrite the input .*m\.onnx; choose another output; nothing was written \[ERR_OUTPUT_CLASH\]/],
      [['--no-validate', '--timing-cache', hardLink], /--timing-cache .*model-link\.bin would overwrite the input .*m\.onnx \(a hard link to the same file\).*\[ERR_OUTPUT_CLASH\]/],
      [['--validate-images', images, '--timing-cache', image], /--timing-cache .*000000006818\.jpg would overwrite the input .*000000006818\.jpg.*\[ERR_OUTPUT_CLASH\]/],
    ];
    for (const [i, [extra, message]] of cases.entries()) {
      const out = path.join(tmp, `out-${i}`);
      const r = await build(out, extra);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out), 'the engine folder is not even created').toBe(false);
    }
    expect(sha(model)).toBe(before.model);
    expect(sha(image)).toBe(before.image);
  });

  it('refuses targets it cannot write before preparing: --out a file, --timing-cache a folder', async () => {
    const asFile = await build(aFile, ['--no-validate']);
    expect(asFile.stderr).toMatch(/Cannot write --out .*a-file: it exists and is not a folder; nothing was written \[ERR_OUTPUT_WRITE\]/);
    const out = path.join(tmp, 'out-folder-cache');
    const asFolder = await build(out, ['--no-validate', '--timing-cache', tmp]);
    expect(asFolder.stderr).toMatch(/Cannot write --timing-cache .*: it is a folder; give a file name.*\[ERR_OUTPUT_WRITE\]/);
    expect(existsSync(out)).toBe(false);
    expect(readFileSync(aFile, 'utf8')).toBe('not a folder');
  });

  it('builds into the planned folder, and refuses a timing cache that is the engine it would build', async () => {
    const out = path.join(tmp, 'engines');
    const cache = path.join(tmp, 'timing', 'my.cache');
    const ok = await build(out, ['--no-validate', '--timing-cache', cache]);
    expect(ok.code, ok.stderr).toBe(0);
    const [engine] = readdirSync(out).filter((f) => f.endsWith('.engine')).map((f) => path.join(out, f));
    expect(existsSync(cache), 'the timing cache is written where asked (its folder made)').toBe(true);
    expect(readdirSync(path.dirname(cache)), 'written under a temporary name, then renamed').toEqual(['my.cache']);
    const engineSha = sha(engine!);
    // The engine's name is known only after the graph is prepared: refused then, saying so.
    const clash = await build(out, ['--no-validate', '--force', '--timing-cache', engine!]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toMatch(/the engine .*\.engine and --timing-cache .*\.engine are the same file; give each output its own name; only the prepared graph .*m\.fp32\.prepared\.onnx was written \[ERR_OUTPUT_CLASH\]/);
    expect(sha(engine!)).toBe(engineSha);
    expect(sha(model)).toBe(before.model);
  });
});

describe.skipIf(tinyDisk('64k') === undefined)('deimv2 build on a full disk (a tiny tmpfs; needs root)', () => {
  it('fails with ERR_OUTPUT_WRITE and leaves no engine, sidecar or temporary file (before: a 0-byte engine under its name)', async () => {
    const disk = tinyDisk('64k')!;
    const out = path.join(disk, 'engines');
    mkdirSync(out);
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(disk, 'filler')}`, 'bs=4k'], { stdio: 'ignore' });
    } catch {
      // dd stops at ENOSPC: the disk is full, as wanted.
    }
    const r = await build(out, ['--no-validate', '--no-prepare']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/cannot write the engine .*\.engine: writing .*\.engine\.partial failed \(disk full\?\) \[ERR_OUTPUT_WRITE\]/);
    expect(readdirSync(out)).toEqual([]);
  });
});
