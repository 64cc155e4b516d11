#!/usr/bin/env node
/** The `deimv2` command line. Each command lives in commands/<name>.ts. */
import { existsSync, readFileSync } from 'node:fs';
import type { Command as Program } from 'commander';
import { requireCommander } from '../cjs.js';
import { DeimError, errorMessage } from '../errors.js';
import { removeTemporaryFiles } from '../output/atomic.js';
import { printable } from '../output/printable.js';
import { dieOf, onStopSignals } from '../signals.js';

const { Command, CommanderError } = requireCommander();

type Register = (program: Program) => void;
/** Each command's module, loaded only when that command runs (or for the general help). */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  detect: () => import('./commands/detect.js'),
  info: () => import('./commands/info.js'),
  eval: () => import('./commands/eval.js'),
  compare: () => import('./commands/compare.js'),
  prepare: () => import('./commands/prepare.js'),
  build: () => import('./commands/build.js'),
  track: () => import('./commands/track.js'),
  worker: () => import('./commands/worker.js'),
  submit: () => import('./commands/submit.js'),
  queue: () => import('./commands/queue.js'),
  serve: () => import('./commands/serve.js'),
};

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/** The program with the commands named in `only` (default: all). */
export async function createProgram(only: readonly string[] = Object.keys(COMMANDS)): Promise<Program> {
  const program = new Command('deimv2')
    .description('DEIMv2 real-time object detection: TensorRT on NVIDIA GPUs, onnxruntime on the CPU')
    .version(pkg.version)
    .showHelpAfterError('(run deimv2 --help for the commands)');
  for (const { register } of await Promise.all(only.map((name) => COMMANDS[name]!()))) register(program);
  // Each command's own hint names it.
  for (const command of program.commands) {
    command.showHelpAfterError(`(run deimv2 ${command.name()} --help for its options)`);
    // `deimv2 detect -photo.jpg`: a file whose name begins with '-' reads as an option; say how to give it.
    command.configureOutput({
      outputError: (text, write) => {
        write(text);
        const option = /unknown option '([^']+)'/.exec(text)?.[1];
        if (option !== undefined && existsSync(option)) {
          write(printable(`deimv2: ${option} is also a file: to give it as an input, put it after -- (deimv2 ${command.name()} -- ${option}) or write ./${option}`) + '\n');
        }
      },
    });
  }
  return program;
}

/**
 * An unknown command is an error even with --help (commander would print the general help and
 * succeed): the first argument that is not an option (or the one after `help`) must name a command.
 */
function unknownCommand(args: readonly string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'));
  // `deimv2 help <command>` names a command too.
  const first = words[0] === 'help' ? words[1] : words[0];
  if (first === undefined) return undefined;
  return first in COMMANDS ? undefined : first;
}

export async function main(argv: string[] = process.argv): Promise<void> {
  // A command that finishes nothing on Ctrl-C or SIGTERM (it installs no handler of its own) still
  // removes its temporary files before it dies of the signal.
  onStopSignals((signal) => {
    if (process.listenerCount(signal) > 1) return;
    removeTemporaryFiles();
    dieOf(signal);
  });
  // A closed stdout (`deimv2 detect clip.mp4 --json - | head`): stop quietly, as Unix tools do when
  // their reader goes away, instead of an unhandled 'error' event with a stack trace. Temporary files
  // are removed and the process dies of SIGTERM (Node ignores SIGPIPE itself; process.exit() would
  // tear down worker threads inside onnxruntime).
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
      removeTemporaryFiles();
      dieOf('SIGTERM');
    });
  }
  try {
    const unknown = unknownCommand(argv.slice(2));
    if (unknown !== undefined) {
      const names = Object.keys(COMMANDS).join(', ');
      process.stderr.write(printable(`deimv2: unknown command '${unknown}' (the commands are ${names}; run deimv2 --help)`) + '\n');
      process.exitCode = 1;
      return;
    }
    const name = argv[2];
    const program = await createProgram(name !== undefined && name in COMMANDS ? [name] : undefined);
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
