/**
 * The tracking flags shared by `deimv2 track` and `deimv2 detect <video> --track`, registered from
 * the one option table (src/track/options.ts). Kept apart from the tracker itself, so a command
 * that only declares the flags does not load it.
 */
import type { Command } from 'commander';
import { TRACK_OPTION_TABLE } from '../track/options.js';

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

/** Registers the tracking flags on a command, less those whose API keys are in `except`. */
export function addTrackOptions(cmd: Command, except: ReadonlyArray<string> = []): Command {
  for (const row of TRACK_OPTION_TABLE) {
    if (except.includes(row.key)) continue;
    if (row.repeatable) cmd.option(row.flag, row.description, collect);
    else cmd.option(row.flag, row.description);
  }
  return cmd;
}
