/**
 * `deimv2 submit <files|dirs|globs...> --redis URL --queue detect [--json out.json] [--wait]`:
 * enqueues images (as paths the workers read, or with --bytes as their contents) with a progress
 * bar; with --wait collects every result into the JSON document `deimv2 detect --json` writes.
 */
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { annotatedTargets } from '../../annotate/write.js';
import { checkOutputs } from '../../output/plan.js';
import { DeimError, errorMessage } from '../../errors.js';
import { readImageFile } from '../../image/decode.js';
import { checkMaxDetections, checkThreshold } from '../../postprocess/detections.js';
import type { DetectionJobOptions } from '../../queue/jobs.js';
import { decimal } from '../options.js';
import { DetectionQueue, type AddJob, type QueueResult } from '../../queue/producer.js';
import { expandInputs } from '../inputs.js';
import { createProgress } from '../progress.js';
import { writeFileAtomic } from '../../output/atomic.js';

interface SubmitCliOptions {
  redis: string;
  queue: string;
  json?: string;
  wait?: boolean;
  bytes?: boolean;
  threshold?: string;
  classes?: string;
  maxDetections?: string;
  annotateDir?: string;
  recursive?: boolean;
  retryFailed?: boolean;
  timeout?: string;
  redisTimeout?: string;
  quiet?: boolean;
}

/** Jobs per addMany() call, and how many such calls are in flight at once. */
const ADD_CHUNK = 100;
const ADD_WINDOW = 4;

export function register(program: Command): void {
  program
    .command('submit')
    .description('enqueue images for `deimv2 worker`s; with --wait, collect the results (the JSON `deimv2 detect --json` writes)')
    .argument('<inputs...>', 'image files, folders or glob patterns')
    .requiredOption('--redis <url>', 'redis://[:password@]host:6379[/db], or rediss:// for TLS (a private CA: NODE_EXTRA_CA_CERTS=ca.pem)')
    .option('--queue <name>', 'queue name', 'detect')
    .option('--wait', 'wait for every result')
    .option('--json <file>', 'with --wait: the results ({model, backend, results}); without: the job ids ("-" for stdout)')
    .option('--bytes', 'send the images\' contents (for workers on other machines) instead of their paths')
    .option('-t, --threshold <score>', 'score threshold 0..1 (default: the worker\'s, 0.4)')
    .option('-c, --classes <names>', 'keep only these classes, comma-separated (person,car)')
    .option('--max-detections <n>', 'keep at most this many detections per image')
    .option('--annotate-dir <dir>', 'workers write annotated copies into this folder (on their machine, under their --allow-dir)')
    .option('-r, --recursive', 'search folders recursively')
    .option('--retry-failed', 'run again the files whose jobs failed before (else their stored failure is the result)')
    .option('--timeout <s>', 'with --wait: give up after this many seconds')
    .option('--redis-timeout <s>', 'give up when Redis stays unreachable this long (the results received are written; the jobs stay queued)', '300')
    .option('-q, --quiet', 'no progress bar')
    .action(async (inputs: string[], options: SubmitCliOptions) => {
      process.exitCode = await submitCommand(inputs, options);
    });
}

export function jobOptionsFrom(o: SubmitCliOptions): DetectionJobOptions {
  const out: DetectionJobOptions = {};
  if (o.threshold !== undefined) out.threshold = checkThreshold(o.threshold, '--threshold');
  if (o.maxDetections !== undefined) out.maxDetections = checkMaxDetections(o.maxDetections);
  if (o.classes !== undefined) out.classes = o.classes.split(',').map((s) => s.trim()).filter(Boolean);
  return out;
}

export async function submitCommand(inputs: string[], options: SubmitCliOptions): Promise<number> {
  const log = (s: string) => process.stderr.write(s + '\n');
  const jobOptions = jobOptionsFrom(options);
  const timeout = options.timeout !== undefined ? decimal(options.timeout) : undefined;
  if (timeout !== undefined && !(timeout > 0 && Number.isFinite(timeout))) throw new DeimError('ERR_INVALID_ARGUMENT', `--timeout must be a positive number of seconds, got "${options.timeout}"`);
  const redisTimeout = decimal(options.redisTimeout ?? '300');
  if (!(redisTimeout > 0 && redisTimeout <= 1e7)) throw new DeimError('ERR_INVALID_ARGUMENT', `--redis-timeout must be a positive number of seconds, got "${options.redisTimeout}"`);
  const { files, problems } = await expandInputs(inputs, { recursive: options.recursive === true });
  for (const p of problems) log(`deimv2: ${p.message}`);
  if (files.length === 0) {
    if (problems.length === 0) log('deimv2: no input images');
    return 1;
  }
  const annotateDir = options.annotateDir !== undefined ? path.resolve(options.annotateDir) : undefined;
  const targets = annotateDir !== undefined ? planAnnotated(files, annotateDir) : undefined;
  const q = new DetectionQueue({
    redis: options.redis,
    queue: options.queue,
    unreachableMs: Math.max(1, Math.round(redisTimeout * 1000)),
    onConnection: (e) =>
      log(e.state === 'lost' ? `deimv2: lost the connection to Redis (${e.error}); reconnecting, giving up after ${redisTimeout} s without it (--redis-timeout)` : `deimv2: Redis is back after ${(e.downMs / 1000).toFixed(1)} s`),
  });
  try {
    await q.ready();
    const ids: Array<string | undefined> = new Array(files.length);
    const entries: Array<QueueResult | undefined> = new Array(files.length);
    const progress = createProgress(files.length, { quiet: options.quiet === true, label: 'submit' });
    // Jobs go in chunks (one round trip each), several chunks in flight; a chunk with a bad job
    // is added one by one so only that file fails.
    const addChunk = async (indices: number[]) => {
      const jobs: Array<{ i: number; job: AddJob }> = [];
      for (const i of indices) {
        const file = files[i]!;
        try {
          const perFile: DetectionJobOptions = targets !== undefined ? { ...jobOptions, annotate: targets.get(file)! } : jobOptions;
          const image = options.bytes ? await readImage(file, q.maxBytes) : file;
          jobs.push({ i, job: { image, options: perFile, ...(options.bytes ? { name: file } : {}), ...(options.retryFailed ? { retryFailed: true } : {}) } });
        } catch (e) {
          entries[i] = failureOf(file, e);
        }
      }
      try {
        const added = await q.addMany(jobs.map((j) => j.job));
        jobs.forEach((j, k) => (ids[j.i] = added[k]));
      } catch (e) {
        if (e instanceof DeimError && e.code === 'ERR_QUEUE') throw e;
        for (const j of jobs) {
          try {
            ids[j.i] = await q.add(j.job);
          } catch (err) {
            if (err instanceof DeimError && err.code === 'ERR_QUEUE') throw err;
            entries[j.i] = failureOf(files[j.i]!, err);
          }
        }
      }
      progress.tick(indices.length);
    };
    const chunks: number[][] = [];
    for (let i = 0; i < files.length; i += ADD_CHUNK) chunks.push(Array.from({ length: Math.min(ADD_CHUNK, files.length - i) }, (_, k) => i + k));
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(ADD_WINDOW, chunks.length) }, async () => {
      while (next < chunks.length) await addChunk(chunks[next++]!);
    }));
    progress.stop();
    const queued = ids.filter((id) => id !== undefined).length;
    if (!options.quiet) log(`deimv2: ${queued} job(s) queued on "${options.queue}"${queued < files.length ? `, ${files.length - queued} refused` : ''}`);

    if (!options.wait) {
      if (options.json !== undefined) {
        const doc = { queue: options.queue, jobs: files.map((file, i) => (ids[i] !== undefined ? { file, id: ids[i] } : { file, error: entries[i] && 'error' in entries[i]! ? entries[i]!.error.message : 'not queued' })) };
        await writeJson(options.json, doc);
      }
      return queued < files.length ? 1 : 0;
    }

    // Several files can share one job (same id): every one of them gets its result.
    const filesOf = new Map<string, number[]>();
    ids.forEach((id, i) => id !== undefined && (filesOf.get(id)?.push(i) ?? filesOf.set(id, [i])));
    const waiting = createProgress(filesOf.size, { quiet: options.quiet === true, label: 'results' });
    const start = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      if (timeout !== undefined) timer = setTimeout(() => resolve('timeout'), timeout * 1000);
    });
    const iterator = q.results(filesOf.keys());
    // Redis gone past --redis-timeout: the results received so far are still written.
    let gaveUp: DeimError | undefined;
    try {
      for (;;) {
        const step = await Promise.race([iterator.next(), timedOut]);
        if (step === 'timeout' || step.done) break;
        for (const i of filesOf.get(step.value.id) ?? []) entries[i] = step.value;
        waiting.tick();
      }
    } catch (e) {
      if (!(e instanceof DeimError && e.code === 'ERR_QUEUE')) throw e;
      gaveUp = e;
    } finally {
      clearTimeout(timer);
      await iterator.return?.();
      waiting.stop();
    }
    const seconds = (performance.now() - start) / 1000;
    let missing = 0;
    const origin = madeBy(entries);
    const mixed = origin.models !== undefined;
    const results = files.map((file, i) => {
      const e = entries[i];
      if (!e) {
        missing++;
        return { file, error: gaveUp ? `no result: Redis unreachable for ${redisTimeout} s (job ${ids[i]} stays queued; submit again to collect it)` : `no result within ${timeout} s (job ${ids[i]} is still queued or running)` };
      }
      if ('error' in e) return { file, error: e.error.message };
      return { file, ...(mixed ? { model: e.model, backend: e.backend } : {}), width: e.width, height: e.height, detections: e.detections };
    });
    if (options.json !== undefined) await writeJson(options.json, { ...origin, results });
    if (gaveUp) log(`deimv2: ${gaveUp.message}`);
    const failed = results.filter((r) => 'error' in r);
    if (failed.length > 0) {
      log(`deimv2: ${failed.length} of ${files.length} file(s) failed:`);
      for (const f of failed.slice(0, 50)) log(`  ${f.error}`);
      if (failed.length > 50) log(`  ... and ${failed.length - 50} more`);
    }
    const detections = results.reduce((s, r) => s + ('detections' in r && r.detections ? r.detections.length : 0), 0);
    log(
      `deimv2: ${files.length - failed.length} image(s), ${detections} detection(s)` +
        (failed.length ? `, ${failed.length} failed` : '') +
        (missing ? ` (${missing} without a result)` : '') +
        ` in ${seconds.toFixed(2)} s through queue "${options.queue}"`,
    );
    return failed.length > 0 || problems.length > 0 ? 1 : 0;
  } finally {
    await q.close();
  }
}

/** An image's bytes for --bytes: a regular, non-empty file of at most maxBytes (never a FIFO or a device, which could block or never end). */
async function readImage(file: string, maxBytes: number): Promise<Buffer> {
  const info = await stat(file).catch(() => undefined);
  if (info?.isFile() && info.size > maxBytes) throw new DeimError('ERR_INPUT_TOO_LARGE', `${file}: ${info.size} bytes is more than the ${maxBytes} bytes a job may carry`, { input: file });
  const bytes = await readImageFile(file);
  if (bytes.length > maxBytes) throw new DeimError('ERR_INPUT_TOO_LARGE', `${file}: ${bytes.length} bytes is more than the ${maxBytes} bytes a job may carry`, { input: file });
  return bytes;
}

function failureOf(file: string, e: unknown): QueueResult {
  return { id: '', file, error: { code: e instanceof DeimError ? e.code : 'ERR_INPUT_UNREADABLE', message: errorMessage(e) } };
}

async function writeJson(target: string, doc: unknown): Promise<void> {
  const text = JSON.stringify(doc, null, 2) + '\n';
  if (target === '-') {
    process.stdout.write(text);
    return;
  }
  try {
    await writeFileAtomic(target, text);
  } catch (e) {
    throw new DeimError('ERR_OUTPUT_WRITE', `cannot write JSON to ${target}: ${errorMessage(e)}`, { input: target });
  }
}

/**
 * The annotated copies of a submission, planned over all its files at once as `detect --out` plans
 * them: same-named inputs get distinct names, and a copy that would land on any input of the
 * submission (not only its own) refuses the whole submission before a job is added. Where the
 * folder is visible here, links and hard links are seen through too (the output plan); the
 * workers check again on their machine.
 */
function planAnnotated(files: readonly string[], annotateDir: string): Map<string, string> {
  const targets = annotatedTargets(files, files.length, annotateDir, true);
  const outputs = [...targets.values()].map((t) => ({ path: t, kind: 'image' as const, flag: '--annotate-dir' }));
  if (existsSync(annotateDir)) {
    checkOutputs({ inputs: [...files], outputs });
    return targets;
  }
  const inputs = new Map(files.map((f) => [path.resolve(f), f]));
  for (const o of outputs) {
    const input = inputs.get(path.resolve(o.path));
    if (input !== undefined) throw new DeimError('ERR_OUTPUT_CLASH', `--annotate-dir ${o.path} would overwrite the input ${input}; choose another folder; nothing was submitted`, { input: o.path });
  }
  return targets;
}

/**
 * Which model and backend made the results: one `model`/`backend` pair at the top, as detect --json
 * writes it, when every result came from the same; otherwise `model`/`backend` are null, `models`
 * lists each pair, and every result carries its own `model` and `backend` (never one model claimed
 * for results another made).
 */
function madeBy(entries: ReadonlyArray<QueueResult | undefined>): Record<string, unknown> {
  const made = entries.filter((e): e is Extract<QueueResult, { model: string }> => e !== undefined && !('error' in e));
  const pairs = [...new Set(made.map((e) => `${e.model}\u0000${e.backend}`))].map((k) => k.split('\u0000') as [string, string]);
  if (pairs.length <= 1) return { model: pairs[0]?.[0] ?? null, backend: pairs[0]?.[1] ?? null };
  return { model: null, backend: null, models: pairs.map(([model, backend]) => ({ model, backend })) };
}
