/**
 * Opt-in CPU accounting by stage, for the benchmarks (bench/lib/breakdown.js): with
 * DEIMV2_STAGE_TIMES=<file> set (Linux only), every JavaScript thread times its stages on its own
 * thread's CPU clock (/proc/thread-self/schedstat, nanoseconds), and appends one JSON line to the
 * file when it exits: its stages and its whole CPU time. The main thread's line also lists every
 * thread still alive (libvips's decode threads among them), the process's CPU time and its
 * children's (ffmpeg), and the CPU time seen for each ffmpeg child by role (sampled every 50 ms).
 * Unset, every function here costs one boolean test.
 *
 * A stage's CPU is its thread's CPU from begin to end, less the CPU of the other stages timed on
 * the same thread meanwhile (an awaited stage, such as infer, lets other work run between).
 */
import { appendFileSync, existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

const file = process.env.DEIMV2_STAGE_TIMES;
const on = file !== undefined && file !== '' && existsSync('/proc/thread-self/schedstat');

interface Totals {
  cpuNs: number;
  wallNs: number;
  count: number;
}

const stages = new Map<string, Totals>();
/** CPU of this thread's stages so far (what a stage that encloses them leaves out). */
let timedNs = 0;

function threadCpuNs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ', 1)[0]);
}

export interface StageMark {
  readonly stage: string;
  readonly cpu0: number;
  readonly timed0: number;
  readonly wall0: number;
}

/** Starts timing `stage` on this thread (undefined, and nothing done, when accounting is off). */
export function beginStage(stage: string): StageMark | undefined {
  if (!on) return undefined;
  return { stage, cpu0: threadCpuNs(), timed0: timedNs, wall0: performance.now() };
}

/** Ends a stage begun with beginStage on this thread. */
export function endStage(mark: StageMark | undefined): void {
  if (!mark) return;
  const inner = timedNs - mark.timed0;
  const cpu = Math.max(0, threadCpuNs() - mark.cpu0 - inner);
  timedNs += cpu;
  const t = stages.get(mark.stage) ?? { cpuNs: 0, wallNs: 0, count: 0 };
  t.cpuNs += cpu;
  t.wallNs += (performance.now() - mark.wall0) * 1e6;
  t.count++;
  stages.set(mark.stage, t);
}

/** Runs `f` as stage `stage` (synchronous work). */
export function timeStage<T>(stage: string, f: () => T): T {
  if (!on) return f();
  const mark = beginStage(stage);
  try {
    return f();
  } finally {
    endStage(mark);
  }
}

/** Runs `f` as stage `stage` (awaited work: what other stages do meanwhile is left out). */
export async function timeStageAsync<T>(stage: string, f: () => Promise<T>): Promise<T> {
  if (!on) return f();
  const mark = beginStage(stage);
  try {
    return await f();
  } finally {
    endStage(mark);
  }
}

function tid(): number {
  return Number(readlinkSync('/proc/thread-self').split('/').pop());
}

/** ffmpeg children of this process by role, their last CPU reading (ns). */
const children = new Map<number, { role: string; cpuNs: number }>();

function roleOf(cmdline: string[]): string {
  if (cmdline.includes('pipe:0')) return 'encode (ffmpeg)';
  if (cmdline.includes('pipe:1')) return 'decode (ffmpeg)';
  return `other child (${cmdline[0] ?? '?'})`;
}

/**
 * This process's child pids: from each thread's /proc children list (a few reads), else from a
 * scan of /proc (hundreds of reads a sample on a busy machine: it cost the sampled run more CPU
 * than its main thread's own work, and was counted as that thread's).
 */
function childPids(): string[] {
  try {
    const pids: string[] = [];
    for (const t of readdirSync('/proc/self/task')) pids.push(...readFileSync(`/proc/self/task/${t}/children`, 'latin1').split(' ').filter(Boolean));
    return pids;
  } catch {
    try {
      return readdirSync('/proc').filter((p) => /^\d+$/.test(p));
    } catch {
      return [];
    }
  }
}

function sampleChildren(): void {
  const pids = childPids();
  for (const p of pids) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const pid = Number(p);
      const known = children.get(pid);
      const role = known?.role ?? roleOf(readFileSync(`/proc/${p}/cmdline`, 'latin1').split('\0').filter(Boolean));
      const cpuNs = Number(readFileSync(`/proc/${p}/schedstat`, 'latin1').split(' ', 1)[0]);
      children.set(pid, { role, cpuNs: Math.max(cpuNs, known?.cpuNs ?? 0) });
    } catch {
      // The process ended meanwhile.
    }
  }
}

/** Clock ticks of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICK_MS = 10;

function flush(): void {
  const record: Record<string, unknown> = {
    main: isMainThread,
    tid: tid(),
    threadCpuMs: threadCpuNs() / 1e6,
    stages: Object.fromEntries([...stages].map(([k, t]) => [k, { cpuMs: t.cpuNs / 1e6, wallMs: t.wallNs / 1e6, count: t.count }])),
  };
  if (isMainThread) {
    sampleChildren();
    const threads: Array<{ tid: number; name: string; cpuMs: number }> = [];
    for (const t of readdirSync('/proc/self/task')) {
      try {
        threads.push({
          tid: Number(t),
          name: readFileSync(`/proc/self/task/${t}/comm`, 'latin1').trim(),
          cpuMs: Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'latin1').split(' ', 1)[0]) / 1e6,
        });
      } catch {
        // The thread ended meanwhile.
      }
    }
    const usage = process.cpuUsage();
    const stat = readFileSync('/proc/self/stat', 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    record.threads = threads;
    record.processCpuMs = (usage.user + usage.system) / 1000;
    record.childrenCpuMs = (Number(fields[13]) + Number(fields[14])) * TICK_MS;
    record.children = [...children.values()].map((c) => ({ role: c.role, cpuMs: c.cpuNs / 1e6 }));
  }
  appendFileSync(file!, JSON.stringify(record) + '\n');
}

if (on) {
  process.on('exit', flush);
  if (isMainThread) setInterval(sampleChildren, 50).unref();
}
