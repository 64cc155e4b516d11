#!/usr/bin/env node
/** The `deimv2` command line. Each command lives in commands/<name>.ts. */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { DeimError, errorMessage } from '../errors.js';
import { printable } from '../output/printable.js';
import { register as registerDetect } from './commands/detect.js';
import { register as registerInfo } from './commands/info.js';
import { register as registerBuild } from './commands/build.js';
import { register as registerEval } from './commands/eval.js';
import { register as registerCompare } from './commands/compare.js';
import { register as registerPrepare } from './commands/prepare.js';
import { register as registerTrack } from './commands/track.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export function createProgram(): Command {
  const program = new Command('deimv2')
    .description('DEIMv2 real-time object detection: TensorRT on NVIDIA GPUs, onnxruntime on the CPU')
    .version(pkg.version)
    .showHelpAfterError('(run deimv2 --help for the commands)');
  registerDetect(program);
  registerInfo(program);
  registerEval(program);
  registerCompare(program);
  registerPrepare(program);
  registerBuild(program);
  registerTrack(program);
  // Each command's own hint names it.
  for (const command of program.commands) command.showHelpAfterError(`(run deimv2 ${command.name()} --help for its options)`);
  return program;
}

/**
 * An unknown command is an error even with --help (commander would print the general help and
 * succeed): the first argument that is not an option (or the one after `help`) must name a command.
 */
function unknownCommand(program: Command, args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  // `deimv2 help <command>` names a command too.
  const first = words[0] === 'help' ? words[1] : words[0];
  if (first === undefined) return undefined;
  const known = program.commands.some((c) => c.name() === first || c.aliases().includes(first));
  return known ? undefined : first;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  try {
    const program = createProgram();
    const unknown = unknownCommand(program, argv.slice(2));
    if (unknown !== undefined) {
      const names = program.commands.map((c) => c.name()).join(', ');
      process.stderr.write(printable(`deimv2: unknown command '${unknown}' (the commands are ${names}; run deimv2 --help)`) + '\n');
      process.exitCode = 1;
      return;
    }
    await program.exitOverride().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    const code = e instanceof DeimError ? ` [${e.code}]` : '';
    process.stderr.write(`${printable(`deimv2: ${errorMessage(e)}`)}${code}\n`);
    if (process.env.DEIMV2_DEBUG && e instanceof Error) process.stderr.write(`${e.stack}\n`);
    process.exitCode = 1;
  }
}

await main();
