/**
 * One error type for the whole service. Every failure that reaches a client carries a stable
 * SCREAMING_CASE code; the HTTP status comes from the single table below, and the body is always
 * OpenAI's envelope `{ error: { message, type, code, param } }` with the code in lower case on
 * the wire (OpenAI's clients match on `context_length_exceeded`, `model_not_found`, ...).
 */

export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  INVALID_JSON: 400,
  /** An input file that cannot be used as a whole (bad header, unreadable, wrong format). */
  INVALID_DATA: 400,
  CONTEXT_LENGTH_EXCEEDED: 400,
  TOKEN_BUDGET_EXCEEDED: 400,
  INVALID_API_KEY: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  MODEL_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** A checkpoint, adapter or model directory that cannot be read or does not fit the model. */
  INVALID_MODEL_FILE: 422,
  ADAPTER_MISMATCH: 422,
  RATE_LIMITED: 429,
  CANCELLED: 499,
  INTERNAL: 500,
  WORKER_ERROR: 502,
  /** A service that a data tool talks to (the evaluator's target) failed or is unreachable. */
  UPSTREAM_ERROR: 502,
  OVERLOADED: 503,
  NO_HEALTHY_WORKER: 503,
  BREAKER_OPEN: 503,
  REDIS_UNAVAILABLE: 503,
  NOT_READY: 503,
  /** No worker could answer and the fallback is off. */
  SERVICE_UNAVAILABLE: 503,
  WORKER_TIMEOUT: 504,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_STATUS, code);
}

/** OpenAI's `type` field, derived from the status so that the table above stays the only table. */
export function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export interface AppErrorOptions {
  /** The request field at fault, as a dotted path (`messages.0.content`). */
  param?: string | null;
  /** Seconds a client should wait before retrying; sent as Retry-After. */
  retryAfter?: number;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly param: string | null;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.param = options.param ?? null;
    this.retryAfter = options.retryAfter;
  }

  /** A client error (4xx): never counts against a worker or the breaker. */
  get isClientError(): boolean {
    return this.status < 500;
  }
}

export interface ErrorEnvelope {
  error: { message: string; type: string; code: string; param: string | null };
}

export function errorEnvelope(err: AppError): ErrorEnvelope {
  return {
    error: {
      message: err.message,
      type: errorType(err.status),
      code: err.code.toLowerCase(),
      param: err.param,
    },
  };
}

/** Reads an envelope (from a worker or a peer) back into an AppError; unknown codes become WORKER_ERROR. */
export function fromEnvelope(body: unknown, fallback: ErrorCode = 'WORKER_ERROR'): AppError {
  const e = (body as Partial<ErrorEnvelope> | null)?.error;
  const code = typeof e?.code === 'string' ? e.code.toUpperCase() : '';
  const message = typeof e?.message === 'string' ? e.message : 'upstream error';
  return new AppError(isErrorCode(code) ? code : fallback, message, { param: e?.param ?? null });
}

/** Turns a zod issue path into the dotted `param` of the envelope. */
export function paramOf(path: ReadonlyArray<PropertyKey>): string | null {
  return path.length === 0 ? null : path.map(String).join('.');
}
