/**
 * The pixel budget every decode is admitted against (src/pool/budget.ts), and the options that set
 * it and the TensorRT execution choices. Peak memory itself is measured by bench/memory.js.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Detector } from '../dist/index.js';
import { detectorOptionsFrom } from '../dist/cli/options.js';
import { checkMemoryBudget, defaultMemoryBudget, MemoryBudget, parseMemorySize } from '../dist/pool/budget.js';
import { ATTO } from './helpers/paths.js';

const MiB = 2 ** 20;

describe('MemoryBudget', () => {
  it('admits decodes while they fit, makes the next wait for a release, and admits an oversized one alone', async () => {
    const budget = MemoryBudget.create(100 * MiB);
    const a = await budget.acquire(60 * MiB);
    const b = await budget.acquire(40 * MiB);
    let admitted = false;
    const c = budget.acquire(10 * MiB).then((release) => ((admitted = true), release));
    await new Promise((r) => setTimeout(r, 30));
    expect(admitted).toBe(false);
    a();
    a(); // giving back twice gives back once
    const releaseC = await c;
    expect(budget.usedBytes).toBe(50 * MiB);
    b();
    releaseC();
    const huge = await budget.acquire(10_000 * MiB); // larger than the budget: takes all of it
    expect(budget.usedBytes).toBe(budget.limitBytes);
    huge();
    expect(budget.usedBytes).toBe(0);
  });

  it('is shared with worker threads (one budget for all the workers of a detector)', async () => {
    const budget = MemoryBudget.create(100 * MiB);
    const held = await budget.acquire(100 * MiB);
    const url = new URL('../dist/pool/budget.js', import.meta.url).href;
    const worker = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(url)}).then(async ({ MemoryBudget }) => {
        const release = await MemoryBudget.attach(workerData).acquire(${50 * MiB});
        parentPort.postMessage('admitted');
        release();
        parentPort.postMessage('released');
      });`, { eval: true, workerData: budget.shared });
    const messages: string[] = [];
    const done = new Promise<void>((resolve) => worker.on('message', (m: string) => (messages.push(m), m === 'released' && resolve())));
    await new Promise((r) => setTimeout(r, 100));
    expect(messages).toEqual([]); // waits: the main thread holds everything
    held();
    await done;
    expect(budget.usedBytes).toBe(0);
    await worker.terminate();
  });

  it('defaults to 1/16 of the memory between 256 MiB and 1 GiB; sizes parse with units', () => {
    expect(defaultMemoryBudget(2 * 1024 * MiB)).toBe(256 * MiB);
    expect(defaultMemoryBudget(8 * 1024 * MiB)).toBe(512 * MiB);
    expect(defaultMemoryBudget(64 * 1024 * MiB)).toBe(1024 * MiB);
    expect(parseMemorySize('2GB')).toBe(2 * 1024 * MiB);
    expect(parseMemorySize('512mb')).toBe(512 * MiB);
    expect(parseMemorySize('1.5G')).toBe(1536 * MiB);
    expect(parseMemorySize('1000000000')).toBe(1e9);
    expect(() => parseMemorySize('lots')).toThrow(/--max-memory must be a size/);
    expect(() => checkMemoryBudget(1000)).toThrow(/maxMemory must be a number of bytes from 16 MiB/);
  });
});

describe('options', () => {
  it('--max-memory, --gpu-preprocess and --cuda-graphs reach DetectorOptions', () => {
    expect(detectorOptionsFrom({ maxMemory: '2GB', gpuPreprocess: 'off', cudaGraphs: 'on' })).toMatchObject({ maxMemory: 2 * 1024 * MiB, gpuPreprocess: false, cudaGraphs: true });
    expect(() => detectorOptionsFrom({ gpuPreprocess: 'maybe' })).toThrow(/--gpu-preprocess must be on or off/);
  });

  it('the Detector checks them', async () => {
    await expect(Detector.create({ model: ATTO, backend: 'cpu', maxMemory: 5 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(Detector.create({ model: ATTO, backend: 'cpu', gpuPreprocess: 'no' as unknown as boolean })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/gpuPreprocess must be true or false/) });
    const d = await Detector.create({ model: ATTO, backend: 'cpu', maxMemory: 64 * MiB, threads: 1 });
    try {
      // A budget smaller than one decoded image still detects it (admitted alone).
      expect((await d.detect(new URL('../examples/example.jpg', import.meta.url).pathname)).detections.length).toBeGreaterThan(0);
    } finally {
      await d.close();
    }
  });
});
