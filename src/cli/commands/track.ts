/**
 * `deimv2 track --detections dets.jsonl --out tracks.jsonl [--mot tracks.txt]`: ByteTrack over the
 * detection JSONL of `deimv2 detect <video> --json`, offline. Also the tracking flags shared with
 * `deimv2 detect <video> --track` (registered from the one option table, src/track/options.ts).
 */
import type { Command } from 'commander';
import { DeimError } from '../../errors.js';
import { planOutputs } from '../../output/plan.js';
import { printable } from '../../output/printable.js';
import { LineWriter, motLines, readDetectionsJsonl, trackJson } from '../../track/io.js';
import { trackOptionsFromCli } from '../../track/options.js';
import { addTrackOptions } from '../track-options.js';
import { formatTrackSummary, TrackSession, type TrackSessionOptions } from '../../track/session.js';

export { addTrackOptions } from '../track-options.js';
export { trackOptionsFromCli };

interface TrackCliOptions extends Record<string, unknown> {
  detections: string;
  out?: string;
  mot?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  addTrackOptions(
    program
      .command('track')
      .description('track objects (ByteTrack) through the detection JSONL that `deimv2 detect <video> --json` writes (run it with --threshold 0.1)')
      .requiredOption('-d, --detections <file>', 'detection JSON lines, one per frame')
      .option('-o, --out <file>', 'tracks as JSON lines, one per frame ("-" for stdout)')
      .option('--mot <file>', 'tracks in MOTChallenge format: frame,id,x,y,w,h,score,-1,-1,-1')
      .option('-q, --quiet', 'no summary'),
    ['trails'],
  ).action(async (options: TrackCliOptions) => {
    process.exitCode = await trackCommand(options);
  });
}

/** Frame rate from the first two frames' pts (frame index / seconds), if the file has them. */
function rateFrom(a: { frame: number; pts?: number } | undefined, b: { frame: number; pts?: number } | undefined): number | undefined {
  if (!a || !b || a.pts === undefined || b.pts === undefined || b.pts <= a.pts) return undefined;
  const fps = (b.frame - a.frame) / (b.pts - a.pts);
  return Number.isFinite(fps) && fps > 0 ? Math.round(fps * 1000) / 1000 : undefined;
}

export async function trackCommand(options: TrackCliOptions): Promise<number> {
  const input = options.detections;
  const sessionOptions: TrackSessionOptions = trackOptionsFromCli(options);
  if (options.out === undefined && options.mot === undefined) {
    throw new DeimError('ERR_INVALID_ARGUMENT', 'deimv2 track needs --out tracks.jsonl and/or --mot tracks.txt');
  }
  // Resolved and compared with the input and each other before anything is read or written.
  planOutputs({
    inputs: [input],
    outputs: [
      ...(options.out !== undefined && options.out !== '-' ? [{ path: options.out, kind: 'jsonl', flag: '--out' }] : []),
      ...(options.mot !== undefined && options.mot !== '-' ? [{ path: options.mot, kind: 'mot', flag: '--mot' }] : []),
    ],
  });

  // The frame rate comes from --fps, else from the first two frames' pts: read those first.
  // The detections of a truncated or damaged video say so in their summary line: so do the tracks.
  let incomplete: Record<string, unknown> | undefined;
  const frames = readDetectionsJsonl(input, {
    onSummary: (s) => {
      if (s.incomplete === true) incomplete = { incomplete: true, ...(typeof s.framesRead === 'number' ? { framesRead: s.framesRead } : {}), ...(typeof s.framesExpected === 'number' ? { framesExpected: s.framesExpected } : {}) };
    },
  });
  const head: Array<Awaited<ReturnType<typeof frames.next>>> = [await frames.next(), await frames.next()];
  const firstTwo = head.filter((r) => !r.done).map((r) => r.value as { frame: number; pts?: number });
  if (sessionOptions.frameRate === undefined) sessionOptions.frameRate = rateFrom(firstTwo[0], firstTwo[1]) ?? 30;
  const session = new TrackSession(sessionOptions);

  const jsonl = options.out !== undefined ? new LineWriter(options.out) : undefined;
  let mot: LineWriter | undefined;
  try {
    mot = options.mot !== undefined ? new LineWriter(options.mot) : undefined;
    const handle = (f: { frame: number; pts?: number; detections: Parameters<TrackSession['update']>[1] }) => {
      const r = session.update(f.frame, f.detections);
      jsonl?.write(
        JSON.stringify({ frame: f.frame, ...(f.pts !== undefined ? { pts: f.pts } : {}), tracks: r.tracks.map(trackJson), ...(r.counts ? { counts: r.counts } : {}) }) + '\n',
      );
      mot?.write(motLines(f.frame, r.tracks));
    };
    for (const h of head) if (!h.done) handle(h.value);
    for await (const f of frames) handle(f);
    const summary = session.summary();
    const note = incomplete ? `${input} holds the detections of an incomplete video (${incomplete.framesRead ?? '?'} of ${incomplete.framesExpected ?? '?'} frames read: truncated or damaged): the tracks are of those frames only` : undefined;
    jsonl?.write(JSON.stringify({ summary: { ...summary, ...incomplete, ...(note ? { warnings: [note] } : {}) } }) + '\n');
    if (!options.quiet) process.stderr.write(formatTrackSummary(summary) + '\n');
    if (note) process.stderr.write(printable(`deimv2: warning: ${note}`) + '\n');
  } catch (e) {
    // A failed run keeps no output: earlier files under the targets stay exactly as they were.
    jsonl?.discard();
    mot?.discard();
    throw e;
  } finally {
    jsonl?.close();
    mot?.close();
  }
  return 0;
}
