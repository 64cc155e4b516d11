/** A pool worker that decodes and preprocesses: batch tensors out, for a backend on the main thread. */
import { tensorStage } from './tensor-stage.js';
import { runWorker } from './worker-core.js';

runWorker(tensorStage);
