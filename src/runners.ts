/**
 * The one place an execution path is chosen: a runner per path, each loaded only when chosen (a
 * CPU run never loads the TensorRT or engine code). A new backend adds its folder under backends/
 * and one line here.
 */
import type { OpenRunner, Runner, RunnerSetup } from './backends/runner.js';

export type RunnerKind = 'cpu-pool' | 'cpu-single' | 'tensorrt';

const RUNNERS: Record<RunnerKind, OpenRunner> = {
  'cpu-pool': async (setup) => (await import('./backends/cpu/pool-runner.js')).openCpuPoolRunner(setup),
  'cpu-single': async (setup) => (await import('./backends/cpu/single-runner.js')).openCpuSingleRunner(setup),
  tensorrt: async (setup) => (await import('./engine/open.js')).openTensorRtRunner(setup),
};

export function openRunner(kind: RunnerKind, setup: RunnerSetup): Promise<Runner> {
  return RUNNERS[kind](setup);
}
