/**
 * Typed errors with stable codes. Every error the package throws on purpose is a DeimError;
 * `code` never changes between releases, `message` says what went wrong and what to do.
 */
export type DeimErrorCode =
  | 'ERR_INPUT_NOT_FOUND'
  | 'ERR_INPUT_EMPTY'
  | 'ERR_INPUT_UNREADABLE'
  | 'ERR_INPUT_TOO_LARGE'
  | 'ERR_TOO_MANY_DETECTIONS'
  | 'ERR_TOO_MANY_CATEGORIES'
  | 'ERR_INPUT_FORMAT'
  | 'ERR_INPUT_TIMEOUT'
  | 'ERR_INPUT_NOT_ALLOWED'
  | 'ERR_NO_IMAGES'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_UNKNOWN_VARIANT'
  | 'ERR_MODEL_NOT_FOUND'
  | 'ERR_MODEL_INVALID'
  | 'ERR_MODEL_NOT_DEIMV2'
  | 'ERR_BACKEND_UNAVAILABLE'
  | 'ERR_BACKEND_FAILED'
  | 'ERR_TENSOR_SIZE'
  | 'ERR_CLOSED'
  | 'ERR_OUTPUT_WRITE'
  | 'ERR_OUTPUT_CLASH'
  | 'ERR_CLASS_NAMES'
  | 'ERR_ENGINE_INVALID'
  | 'ERR_ENGINE_STALE'
  | 'ERR_ENGINE_VALIDATION'
  | 'ERR_PREPARE'
  | 'ERR_EVAL_INPUT'
  | 'ERR_VIDEO'
  | 'ERR_VIDEO_SOURCE'
  | 'ERR_FFMPEG_NOT_FOUND'
  | 'ERR_ABORTED'
  | 'ERR_QUEUE';

export class DeimError extends Error {
  readonly code: DeimErrorCode;
  /** The file, URL or argument the error is about, when there is one. */
  readonly input?: string;

  constructor(code: DeimErrorCode, message: string, options: { input?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DeimError';
    this.code = code;
    if (options.input !== undefined) this.input = options.input;
  }
}

export function isDeimError(e: unknown, code?: DeimErrorCode): e is DeimError {
  return e instanceof DeimError && (code === undefined || e.code === code);
}

/** The message of anything thrown, for reports. */
export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
