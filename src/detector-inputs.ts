/** How the Detector hands its inputs to a runner, and a failed chunk back to its caller. */
import { DeimError } from './errors.js';
import { describeInput, type ImageInput } from './image/input.js';
import type { TaskSource } from './pool/messages.js';
import type { DetectionFailure } from './postprocess/types.js';

/** Each image of a chunk whose run failed, as a failure in its place. */
export function failureOf(input: ImageInput, e: unknown): DetectionFailure {
  const code = e instanceof DeimError ? e.code : 'ERR_BACKEND_FAILED';
  const message = e instanceof Error ? e.message : String(e);
  return { ...(typeof input === 'string' ? { file: input } : {}), error: { code, message } };
}

export function toSource(input: ImageInput): TaskSource {
  if (typeof input === 'string') return { kind: 'path', path: input };
  if (input instanceof Uint8Array) return { kind: 'bytes', bytes: input, name: describeInput(input) };
  if (typeof input === 'object' && input !== null && 'data' in input) return { kind: 'raw', image: input, name: describeInput(input) };
  throw new DeimError('ERR_INVALID_ARGUMENT', `image input must be a file path, a Buffer of encoded bytes, or {data, width, height, channels}; got ${input === null ? 'null' : typeof input}`);
}
