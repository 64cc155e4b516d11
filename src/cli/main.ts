#!/usr/bin/env node
/** The `deimv2` command line. Each command lives in commands/<name>.ts. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { DeimError, errorMessage } from '../errors.js';
import { register as registerDetect } from './commands/detect.js';
import { register as registerInfo } from './commands/info.js';
import { register as registerBuild } from './commands/build.js';
import { register as registerEval } from './commands/eval.js';
import { register as registerCompare } from './commands/compare.js';
import { register as registerPrepare } from './commands/prepare.js';
import { register as registerWorker } from './commands/worker.js';
import { register as registerSubmit } from './commands/submit.js';
import { register as registerQueue } from './commands/queue.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function createProgram(): Command {
  const program = new Command('deimv2')
    .description('DEIMv2 real-time object detection: TensorRT on NVIDIA GPUs, onnxruntime on the CPU')
    .version(pkg.version)
    .showHelpAfterError('(run deimv2 <command> --help for its options)');
  registerDetect(program);
  registerInfo(program);
  registerEval(program);
  registerCompare(program);
  registerPrepare(program);
  registerBuild(program);
  registerWorker(program);
  registerSubmit(program);
  registerQueue(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    await createProgram().exitOverride().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    const code = e instanceof DeimError ? ` [${e.code}]` : '';
    process.stderr.write(`deimv2: ${errorMessage(e)}${code}\n`);
    if (process.env.DEIMV2_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}

await main();
