/**
 * RTSP cameras on loopback for benchmarks: the tests' harness (test/helpers/rtsp-server.py,
 * GStreamer's gst-rtsp-server through Debian's python3-gi) serving an H.264 elementary stream in a
 * loop at its frame rate; one server process a camera.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './service.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVER = path.join(root, 'test', 'helpers', 'rtsp-server.py');

/**
 * Starts one camera serving `h264` (Annex B) at `fps`.
 * @returns {Promise<{ url: string, stop: () => Promise<void> }>}
 */
export async function startCamera(h264, fps) {
  const port = await freePort();
  // Debian's python3 (python3-gi lives there), not whatever python3 comes first on PATH.
  const child = spawn('/usr/bin/python3', [SERVER, String(port), h264, String(fps)], { stdio: ['ignore', 'pipe', 'pipe'] });
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
