/**
 * The pixel budget: decoded full-size pixels are what takes memory (a 16383x16383 PNG is 6 MB on
 * disk and 805 MB decoded), so every decode is admitted against one budget shared by all the
 * workers of a Detector, and gives its share back as soon as its full-size pixels are no longer
 * needed. An image larger than the whole budget is admitted alone. The counter lives in a
 * SharedArrayBuffer (KiB units), so workers admit themselves without asking the main thread.
 */
import os from 'node:os';
import { DeimError } from '../errors.js';

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs?: number) => { async: boolean; value: Promise<string> | string };

const USED = 0;
const LIMIT = 1;

/** Default: 1/16 of the machine's memory, between 256 MiB and 1 GiB. */
export function defaultMemoryBudget(totalBytes = os.totalmem()): number {
  return Math.min(1024 * 1024 * 1024, Math.max(256 * 1024 * 1024, Math.floor(totalBytes / 16)));
}

/** Checks a budget in bytes (at least 16 MiB). */
export function checkMemoryBudget(bytes: number | undefined): number {
  if (bytes === undefined) return defaultMemoryBudget();
  if (typeof bytes !== 'number' || !Number.isFinite(bytes) || bytes < 16 * 1024 * 1024 || bytes > 2 ** 40) {
    throw new DeimError('ERR_INVALID_ARGUMENT', `maxMemory must be a number of bytes from 16 MiB to 1 TiB, got ${String(bytes)}`, { input: String(bytes) });
  }
  return Math.floor(bytes);
}

/** "2GB", "512MB", "1.5g", "800m", or plain bytes -> bytes (binary units: 1 GB = 2^30). */
export function parseMemorySize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$/i.exec(text);
  if (!m) throw new DeimError('ERR_INVALID_ARGUMENT', `--max-memory must be a size such as 2GB or 512MB, got "${text}"`, { input: text });
  const unit = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * unit);
}

export class MemoryBudget {
  private readonly cells: Int32Array;

  private constructor(readonly shared: SharedArrayBuffer) {
    this.cells = new Int32Array(shared);
  }

  static create(bytes: number): MemoryBudget {
    const budget = new MemoryBudget(new SharedArrayBuffer(8));
    Atomics.store(budget.cells, LIMIT, Math.max(1, Math.ceil(bytes / 1024)));
    return budget;
  }

  /** The same budget seen from another thread. */
  static attach(shared: SharedArrayBuffer): MemoryBudget {
    return new MemoryBudget(shared);
  }

  get limitBytes(): number {
    return Atomics.load(this.cells, LIMIT) * 1024;
  }

  get usedBytes(): number {
    return Atomics.load(this.cells, USED) * 1024;
  }

  /** Waits until `bytes` fit, takes them, and returns the function that gives them back (once). */
  async acquire(bytes: number): Promise<() => void> {
    const limit = Atomics.load(this.cells, LIMIT);
    const need = Math.min(limit, Math.max(1, Math.ceil(bytes / 1024)));
    for (;;) {
      const used = Atomics.load(this.cells, USED);
      if (used + need <= limit) {
        if (Atomics.compareExchange(this.cells, USED, used, used + need) === used) break;
        continue;
      }
      // A pending waitAsync does not keep the event loop alive: a timer does, and also bounds
      // each wait (the loop re-reads the counter), should a notify be missed.
      const wait = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync(this.cells, USED, used, 1000);
      if (!wait.async) continue;
      const alive = setTimeout(() => {}, 2000);
      try {
        await wait.value;
      } finally {
        clearTimeout(alive);
      }
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      Atomics.sub(this.cells, USED, need);
      Atomics.notify(this.cells, USED);
    };
  }
}
