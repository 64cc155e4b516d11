/** `deimv2 serve` as a child process for the tests: started on a free port, its log kept, stopped with SIGTERM. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { CLI, MODEL_DIR, ROOT } from './paths.js';
import { freePort } from './redis.js';

export interface TestService {
  url: string;
  child: ChildProcess;
  /** Everything it wrote to stderr and stdout so far. */
  log(): string;
  /** Sends SIGTERM and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** GET/POST... on the service; JSON bodies. */
  call(method: string, route: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any; text: string; headers: Headers }>;
}

const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of started) child.kill('SIGKILL');
});

/** Starts `deimv2 serve ARGS --port <free>` and waits for its "ready on" line. */
export async function startServe(args: string[], env: Record<string, string | undefined> = {}): Promise<TestService> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', ...args, '--port', String(port)], { cwd: ROOT, env: { ...process.env, DEIMV2_MODEL_DIR: MODEL_DIR, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(child);
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => {
    started.delete(child);
    resolve({ code, signal });
  }));
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (/ready on http/.test(log)) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
    void exited.then((r) => {
      clearInterval(timer);
      reject(new Error(`deimv2 serve exited (${r.code ?? r.signal}): ${log}`));
    });
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    child,
    log: () => log,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    async call(method, route, body, headers = {}) {
      const res = await fetch(url + route, {
        method,
        headers: { ...(body !== undefined && !(body instanceof Uint8Array) ? { 'Content-Type': 'application/json' } : {}), ...headers },
        ...(body !== undefined ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, json, text, headers: res.headers };
    },
  };
}

/** Reads an SSE body until it ends, giving each event's id (its frame number) to `onId`. */
export async function readEventIds(reader: ReadableStreamDefaultReader<Uint8Array>, onId: (id: number) => void): Promise<void> {
  const decoder = new TextDecoder();
  for (let text = ''; ; ) {
    const { value, done } = await reader.read();
    if (done) return;
    text += decoder.decode(value, { stream: true });
    const parts = text.split('\n\n');
    text = parts.pop()!;
    for (const p of parts) if (p.startsWith('id: ')) onId(Number(p.slice(4, p.indexOf('\n'))));
  }
}

/** The ids of the live child processes of `pid` whose command is `name`. */
export function childrenNamed(pid: number, name: string): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid), '-x', name], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 200): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
