/**
 * Where ffmpeg's raw frames come in: a connected pair of Unix sockets instead of its stdout pipe.
 * ffmpeg writes to one end (its fd 1); we read the other into one buffer of our own (net's
 * `onread`), so a 1 MB frame is not 16 freshly allocated 64 KB chunks: at 100 frames a second those
 * chunks are 100 MB/s of external memory that keep V8's collector marking the main heap (measured:
 * about half the main thread's time in a 2-stream `deimv2 serve`). The bytes are the same.
 *
 * The listening socket lives a moment in a folder only this user can enter (mode 0700), and takes
 * one connection: ours. Where any of this is not available (Windows, a temporary folder whose path
 * is too long for a socket), the caller keeps the pipe.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface FrameSocket {
  /** The end ffmpeg writes to: give it as the child's stdout, then call `detach()`. */
  childEnd: net.Socket;
  /** Our end (pause/resume/isPaused/destroy as a stream; data goes to the callback, not 'data'). */
  reader: net.Socket;
  /** Closes our copy of the child's end (the reader sees the end of data when ffmpeg exits). */
  detach(): void;
}

/** Bytes read at once: a Unix socket hands over what its buffer holds (about 200 KB on Linux). */
const READ_BYTES = 256 * 1024;

/** Longest socket path (sun_path is 108 bytes on Linux, 104 on macOS). */
const MAX_PATH = 100;

/**
 * A socket pair whose reader calls `onData(chunk)` for each read; `chunk` is valid only during
 * the call (the buffer is reused). Undefined where it cannot be made: use a pipe then.
 */
export async function openFrameSocket(onData: (chunk: Buffer) => void): Promise<FrameSocket | undefined> {
  if (process.platform === 'win32') return undefined;
  let dir: string | undefined;
  try {
    dir = mkdtempSync(path.join(os.tmpdir(), 'deimv2-frames-'));
    const address = path.join(dir, 's');
    if (Buffer.byteLength(address) > MAX_PATH) return undefined;
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address, () => resolve());
    });
    try {
      const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
      const buffer = Buffer.allocUnsafeSlow(READ_BYTES);
      const reader = net.connect({ path: address, onread: { buffer, callback: (n: number) => (onData(buffer.subarray(0, n)), true) } });
      await new Promise<void>((resolve, reject) => {
        reader.once('connect', resolve);
        reader.once('error', reject);
      });
      const childEnd = await accepted;
      return { childEnd, reader, detach: () => childEnd.destroy() };
    } finally {
      server.close();
    }
  } catch {
    return undefined;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
