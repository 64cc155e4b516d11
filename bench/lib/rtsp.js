/**
 * RTSP cameras on loopback for benchmarks: the tests' server (test/helpers/rtsp-server.py,
 * GStreamer's gst-rtsp-server through Debian's python3-gi) serving the H.264 video of an MP4 at its
 * frame rate (its own timestamps pace it); one server process a camera. The MP4 must be long enough
 * for the run (the server plays it once): bench/serve.js loops the clip with ffmpeg beforehand.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './service.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVER = path.join(root, 'test', 'helpers', 'rtsp-server.py');

/**
 * Starts one camera serving `mp4` (H.264).
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startCamera(mp4) {
  const port = await freePort();
  // Debian's python3 (python3-gi lives there), not whatever python3 comes first on PATH.
  const child = spawn('/usr/bin/python3', [SERVER, String(port), mp4, 'cam'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d.toString(); });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the RTSP server did not start in 20 s: ${err}`)), 20_000);
    child.stdout.on('data', (d) => {
      out += d.toString();
      const m = /^ready (\S+)/m.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then((code) => { clearTimeout(timer); reject(new Error(`the RTSP server exited (${code}): ${err}`)); });
  });
  return {
    url,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
