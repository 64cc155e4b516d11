#!/usr/bin/env node
/** The `deimv2` command line. Each command lives in commands/<name>.ts. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { DeimError, errorMessage } from '../errors.js';

type Register = (program: Command) => void;
/** Each command's module, loaded only when that command runs (or for the general help). */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  detect: () => import('./commands/detect.js'),
  info: () => import('./commands/info.js'),
  eval: () => import('./commands/eval.js'),
  compare: () => import('./commands/compare.js'),
  prepare: () => import('./commands/prepare.js'),
  build: () => import('./commands/build.js'),
};

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The program with the commands named in `only` (default: all). */
export async function createProgram(only: readonly string[] = Object.keys(COMMANDS)): Promise<Command> {
  const program = new Command('deimv2')
    .description('DEIMv2 real-time object detection: TensorRT on NVIDIA GPUs, onnxruntime on the CPU')
    .version(pkg.version)
    .showHelpAfterError('(run deimv2 <command> --help for its options)');
  for (const { register } of await Promise.all(only.map((name) => COMMANDS[name]!()))) register(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    const name = argv[2];
    const program = await createProgram(name !== undefined && name in COMMANDS ? [name] : undefined);
    await program.exitOverride().parseAsync(argv);
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
