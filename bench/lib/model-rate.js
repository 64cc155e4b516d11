/**
 * Model-only rates of the CPU backend: onnxruntime sessions fed the same tensor over and over (no
 * decode, no resize, no postprocess). `modelRunner` is one session with `threads` intra-op threads;
 * `perCorePool` is the pool layout's model alone: one single-thread session per core, each in its
 * own worker thread, all running at once (their rates summed).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

/** A session fed the same tensor; `measure(seconds)` returns images per second. */
export async function modelRunner(modelPath, side, threads) {
  const session = await ort.InferenceSession.create(modelPath, { graphOptimizationLevel: 'all', intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential' });
  const feeds = {
    images: new ort.Tensor('float32', new Float32Array(3 * side * side).fill(0.45), [1, 3, side, side]),
    orig_target_sizes: new ort.Tensor('int64', BigInt64Array.from([640n, 480n]), [1, 2]),
  };
  for (let i = 0; i < 5; i++) await session.run(feeds); // warm-up, not counted
  return {
    async measure(seconds) {
      let n = 0;
      const t0 = performance.now();
      while (performance.now() - t0 < seconds * 1000) {
        await session.run(feeds);
        n++;
      }
      return n / ((performance.now() - t0) / 1000);
    },
    release: () => session.release(),
  };
}

const self = fileURLToPath(import.meta.url);

if (!isMainThread && workerData?.modelRateWorker) {
  const runner = await modelRunner(workerData.modelPath, workerData.side, 1);
  parentPort.postMessage('ready');
  parentPort.on('message', async (m) => {
    if (m === 'close') return void (await runner.release(), parentPort.close());
    parentPort.postMessage(await runner.measure(m));
  });
}

/** `cores` single-thread sessions in worker threads; `measure(seconds)` returns their summed rate. */
export async function perCorePool(modelPath, side, cores) {
  const workers = await Promise.all(
    Array.from({ length: cores }, () => new Promise((resolve, reject) => {
      const w = new Worker(self, { workerData: { modelRateWorker: true, modelPath: path.resolve(modelPath), side } });
      w.once('message', () => resolve(w));
      w.once('error', reject);
    })),
  );
  return {
    async measure(seconds) {
      const rates = await Promise.all(workers.map((w) => new Promise((resolve) => {
        w.once('message', resolve);
        w.postMessage(seconds);
      })));
      return rates.reduce((a, b) => a + b, 0);
    },
    close: () => Promise.all(workers.map((w) => new Promise((resolve) => {
      w.once('exit', resolve);
      w.postMessage('close');
    }))),
  };
}
