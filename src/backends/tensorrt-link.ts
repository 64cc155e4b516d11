// TEMPORARY: until src/backends/tensorrt lands; replaced by static imports.
import type { Backend, BackendAvailability } from './types.js';
import { DeimError } from '../errors.js';
export function tensorrtAvailability(): BackendAvailability {
  return { name: 'tensorrt', available: false, detail: 'TensorRT unavailable: not wired yet' };
}
export async function createTensorRtBackend(_o: Record<string, unknown>): Promise<Backend> {
  throw new DeimError('ERR_BACKEND_UNAVAILABLE', tensorrtAvailability().detail);
}
