/**
 * Writing one model into a Triton model repository: `REPO/NAME/config.pbtxt`, `REPO/NAME/README.txt`
 * and `REPO/NAME/1/<model file>`. Every file is written to a hidden temporary name beside its target
 * and renamed, so Triton (which skips hidden files) and readers never see half a file; an input file
 * is never a target; a repository path that is a file is refused.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DeimError, errorMessage } from '../errors.js';
import { checkModelName, configText, type TritonModelConfig } from './config.js';
import { AtomicFile } from '../output/atomic.js';

export interface RepositoryTarget {
  /** The repository folder (created when missing). */
  repo: string;
  name: string;
  /** Model instances (checked here so a CLI can refuse before long work). */
  instances?: number;
}

export interface RepositoryPaths {
  readonly repo: string;
  /** REPO/NAME */
  readonly modelDir: string;
  readonly config: string;
  readonly readme: string;
  /** REPO/NAME/1/<file> */
  readonly model: string;
}

export interface WriteRepositoryInput extends RepositoryTarget {
  config: TritonModelConfig;
  readme: string;
  /** model.plan or model.onnx (Triton's default file names for the two platforms). */
  fileName: 'model.plan' | 'model.onnx';
  /** The model: a file to copy, or bytes. */
  source: { file: string; sha256?: string } | { bytes: Uint8Array };
  /** Files that must never be written (the user's inputs). */
  inputs: readonly string[];
}

export interface RepositoryResult extends RepositoryPaths {
  readonly name: string;
  readonly config: string;
  readonly configText: string;
  readonly modelConfig: TritonModelConfig;
  /** Things to know about the folder (other versions that Triton would serve instead). */
  readonly warnings: readonly string[];
}

/** Checks a target before any long work (an engine build): name rules, repository not a file, no other platform's model in the folder. */
export async function checkRepositoryTarget(target: RepositoryTarget, fileName: 'model.plan' | 'model.onnx' = 'model.plan'): Promise<RepositoryPaths> {
  checkModelName(target.name);
  if (target.instances !== undefined && !(Number.isInteger(target.instances) && target.instances >= 1 && target.instances <= 1024)) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `Expected an integer between 1 and 1024 for the Triton instances but received ${String(target.instances)}`, { input: String(target.instances) });
  }
  if (typeof target.repo !== 'string' || target.repo.trim() === '') {
    throw new DeimError('ERR_INVALID_ARGUMENT', 'the Triton model repository needs a folder path', { input: String(target.repo) });
  }
  const repo = path.resolve(target.repo);
  const modelDir = path.join(repo, target.name);
  const paths = { repo, modelDir, config: path.join(modelDir, 'config.pbtxt'), readme: path.join(modelDir, 'README.txt'), model: path.join(modelDir, '1', fileName) };
  for (const [dir, what] of [[repo, 'Triton model repository'], [modelDir, 'model folder'], [path.dirname(paths.model), 'version folder']] as const) {
    const s = await stat(dir).catch(() => undefined);
    if (s && !s.isDirectory()) throw new DeimError('ERR_INVALID_ARGUMENT', `the ${what} ${dir} is a file, not a folder`, { input: dir });
  }
  await checkPlatform(paths.config, fileName === 'model.plan' ? 'tensorrt_plan' : 'onnxruntime_onnx');
  return paths;
}

/** A model folder whose config names another platform is refused rather than mixed. */
async function checkPlatform(config: string, wanted: string): Promise<void> {
  const existing = await readFile(config, 'utf8').catch(() => undefined);
  const platform = existing === undefined ? undefined : /^\s*platform\s*:\s*"([^"]*)"/m.exec(existing)?.[1];
  if (existing !== undefined && platform !== wanted) {
    throw new DeimError('ERR_OUTPUT_WRITE',
      `${config} already holds a ${platform ? `"${platform}"` : 'different'} model, not "${wanted}": ` +
        'give another name (--triton-name) or repository folder instead of mixing two model forms in one folder', { input: config });
  }
}

/**
 * Writes the model file, README.txt, then config.pbtxt (last, so a polling Triton finds a complete
 * model). A model folder whose config names another platform is refused rather than mixed.
 */
export async function writeRepository(input: WriteRepositoryInput): Promise<RepositoryResult> {
  const paths = await checkRepositoryTarget(input, input.fileName);
  if (input.config.name !== input.name) throw new DeimError('ERR_INVALID_ARGUMENT', `the config names "${input.config.name}" but the folder is "${input.name}"`);
  for (const target of [paths.model, paths.config, paths.readme]) {
    for (const file of input.inputs) {
      if (await samePath(target, file)) {
        throw new DeimError('ERR_INVALID_ARGUMENT', `${target} is an input (${file}): writing the Triton repository there would replace it; choose another repository folder or name`, { input: target });
      }
    }
  }
  const warnings: string[] = [];
  const versions = (await readdir(paths.modelDir).catch(() => [] as string[])).filter((v) => /^[1-9]\d*$/.test(v) && v !== '1');
  if (versions.length > 0) {
    warnings.push(`${paths.modelDir} also has version folder(s) ${versions.join(', ')}: Triton serves the highest version by default, not the version 1 written now`);
  }
  try {
    await mkdir(path.dirname(paths.model), { recursive: true });
  } catch (e) {
    throw new DeimError('ERR_OUTPUT_WRITE', `cannot create ${path.dirname(paths.model)}: ${errorMessage(e)}`, { input: path.dirname(paths.model), cause: e });
  }
  await atomicWrite(paths.model, async (temporary) => {
    if ('bytes' in input.source) {
      await writeFile(temporary, input.source.bytes);
      return;
    }
    await copyFile(input.source.file, temporary);
    const expected = input.source.sha256;
    if (expected !== undefined) {
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(temporary)) hash.update(chunk as Buffer);
      const actual = hash.digest('hex');
      if (actual !== expected) {
        throw new DeimError('ERR_ENGINE_INVALID', `${input.source.file} does not match the sha256 its sidecar records (${actual.slice(0, 16)}... vs ${expected.slice(0, 16)}...): rebuild the engine`, { input: input.source.file });
      }
    }
  });
  await atomicWrite(paths.readme, (temporary) => writeFile(temporary, input.readme));
  const text = configText(input.config);
  await atomicWrite(paths.config, (temporary) => writeFile(temporary, text));
  return { ...paths, name: input.name, configText: text, modelConfig: input.config, warnings };
}

/** `write` fills a temporary file beside `file` (output/atomic: removed on failure and at exit), renamed onto it when whole. */
async function atomicWrite(file: string, write: (temporary: string) => Promise<void>): Promise<void> {
  const out = new AtomicFile(file);
  try {
    await write(out.path);
    await out.commit();
  } catch (e) {
    out.discard();
    if (e instanceof DeimError) throw e;
    throw new DeimError('ERR_OUTPUT_WRITE', `cannot write ${file}: ${errorMessage(e)}`, { input: file, cause: e });
  }
}

async function samePath(a: string, b: string): Promise<boolean> {
  const real = async (p: string) => realpath(p).catch(() => path.resolve(p));
  return (await real(a)) === (await real(b));
}
