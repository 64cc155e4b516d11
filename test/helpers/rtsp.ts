/**
 * Real RTSP cameras for the tests: test/helpers/rtsp-server.py (GStreamer's gst-rtsp-server via
 * python3-gi) serving a video's H.264 looped (10 times by default, stream copy) at its frame rate,
 * on a free loopback port.
 * `restart()` brings it back on the same port (a camera that went away and came back).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './redis.js';

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'rtsp-server.py');
const PYTHON = '/usr/bin/python3';

export interface TestCamera {
  port: number;
  url: string;
  /** Kills the server (SIGKILL, as a camera losing power) and starts it again on the same port. */
  restart(downMs?: number): Promise<void>;
  /** Kills the server, leaving the port closed. */
  kill(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** True when python3 can load GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0, python3-gst-1.0). */
export function rtspServerAvailable(): boolean {
  if (!existsSync(PYTHON)) return false;
  try {
    execFileSync(PYTHON, ['-c', 'import gi; gi.require_version("GstRtspServer", "1.0"); from gi.repository import GstRtspServer'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const looped = new Map<string, string>();
/** The video's H.264 repeated `times` times in one MP4 (stream copy; made once per video and test process). */
function loopedCopy(video: string, times: number): string {
  const key = `${video}\0${times}`;
  let out = looped.get(key);
  if (out) return out;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'deimv2-rtsp-'));
  out = path.join(dir, `${path.basename(video, path.extname(video))}.x${times}.mp4`);
  execFileSync('ffmpeg', ['-v', 'error', '-y', '-stream_loop', String(times - 1), '-i', video, '-map', '0:v:0', '-c', 'copy', out]);
  looped.set(key, out);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  return out;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts a camera serving `video` (an H.264 MP4) at rtsp://127.0.0.1:PORT/<name>. */
export async function startCamera(video: string, options: { name?: string; port?: number; loops?: number } = {}): Promise<TestCamera> {
  const file = loopedCopy(video, options.loops ?? 10);
  const port = options.port ?? (await freePort());
  const name = options.name ?? 'cam';
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    // The port can stay taken for a moment after a kill: try again for a few seconds.
    for (let attempt = 0; ; attempt++) {
      const proc = spawn(PYTHON, [SCRIPT, String(port), file, name], { stdio: ['ignore', 'pipe', 'pipe'] });
      running.add(proc);
      proc.once('exit', () => running.delete(proc));
      let log = '';
      proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const ready = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 10_000);
        proc.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('ready ')) {
            clearTimeout(timer);
            resolve(true);
          }
        });
        proc.once('exit', () => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      if (ready) {
        child = proc;
        return;
      }
      proc.kill('SIGKILL');
      if (attempt >= 10) throw new Error(`the RTSP server did not start on port ${port}: ${log}`);
      await new Promise((r) => setTimeout(r, 300));
    }
  };
  const kill = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    port,
    url: `rtsp://127.0.0.1:${port}/${name}`,
    start,
    kill,
    stop: kill,
    async restart(downMs = 500) {
      await kill();
      await new Promise((r) => setTimeout(r, downMs));
      await start();
    },
  };
}
