import { afterAll, beforeAll } from 'vitest';
import { Detector } from '../../dist/index.js';
import { MODEL_DIR } from './paths.js';

/** An Atto detector on the CPU, created before a file's tests and closed after them. */
export function attoForFile(): () => Detector {
  let detector: Detector | undefined;
  beforeAll(async () => {
    detector = await Detector.create({ model: 'atto', modelDir: MODEL_DIR, backend: 'cpu' });
  });
  afterAll(async () => {
    await detector?.close();
  });
  return () => {
    if (!detector) throw new Error('the Atto detector is not open yet');
    return detector;
  };
}
