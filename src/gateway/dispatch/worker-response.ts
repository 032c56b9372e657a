/**
 * One worker response, read as it arrives: an undici dispatch handler that splits the NDJSON body
 * into events and queues them for the answer pipeline.
 *
 * Why a dispatch handler and not `pool.request()`: a request's body is a Readable stream read
 * through an async generator, which costs a stream, an iterator and a promise per event, and
 * destroying a body that has not emitted 'end' builds an error with a stack trace; at thousands
 * of answers per second the gateway profile showed these among its largest costs. Here each
 * chunk is parsed where it lands and events wait in an array.
 *
 * `firstToken` settles when the generation has started (a token or an `end` queued), or fails: a
 * refusal (non-200, its error envelope read), an `error` event before the first token, garbage, a
 * connection failure (`unreachable`), or an abort (the caller's signal, the ttft timer).
 */
import type { Dispatcher } from 'undici';
import { AppError, ERROR_STATUS, isErrorCode } from '../../shared/errors.js';
import { EventLineReader } from '../../protocol/ndjson.js';
import type { GenerateEvent } from '../../protocol/schemas.js';

/** Longest error body read back from a worker that refused a request. */
const MAX_ERROR_BODY = 64 * 1024;
/** A worker that keeps its stream open after the `end` event is cut after this. */
const END_GRACE_MS = 1000;

/**
 * A worker's error code as the gateway's: client errors (4xx) and OVERLOADED keep their code;
 * anything else the worker calls its own failure is a WORKER_ERROR (502) to our clients.
 */
export function workerError(code: string, message: string, param: string | null = null): AppError {
  const upper = code.toUpperCase();
  if (isErrorCode(upper) && (ERROR_STATUS[upper] < 500 || upper === 'OVERLOADED')) return new AppError(upper, message, { param });
  return new AppError('WORKER_ERROR', message, { param });
}

export function eventError(event: { code: string; message: string }): AppError {
  return workerError(event.code, event.message);
}

/** The worker's refusal as an AppError: its envelope's code when it has one, else the status's. */
export function refusal(status: number, text: string): AppError {
  let parsed: unknown = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not an envelope: fall through to the status.
  }
  const fallback = status === 503 ? 'OVERLOADED' : status >= 500 ? 'WORKER_ERROR' : status === 404 ? 'MODEL_NOT_FOUND' : 'INVALID_REQUEST';
  const e = (parsed as { error?: { code?: unknown; message?: unknown; param?: unknown } } | null)?.error;
  const message = typeof e?.message === 'string' ? e.message.slice(0, 1000) : `worker answered ${status}`;
  const param = typeof e?.param === 'string' ? e.param : null;
  const err = typeof e?.code === 'string' ? workerError(e.code, message, param) : new AppError(fallback, message, { param });
  // A worker's 5xx is never a client error, whatever its body says, and the reverse.
  if ((status >= 500) !== !err.isClientError) return new AppError(fallback, message, { param });
  return err;
}

export class WorkerResponse implements Dispatcher.DispatchHandler {
  /** Settles when the generation has started streaming, or cannot. */
  readonly firstToken: Promise<void>;
  /** True when the request never reached a worker that answers (connect refused, reset before headers). */
  unreachable = false;
  private resolveFirst!: () => void;
  private rejectFirst!: (err: Error) => void;
  private started = false;
  private controller: Dispatcher.DispatchController | null = null;
  private status = 0;
  private errorText = '';
  private readonly reader = new EventLineReader();
  private readonly queue: GenerateEvent[] = [];
  private head = 0;
  private sawEnd = false;
  private ended = false;
  private failure: Error | null = null;
  private waiter: (() => void) | null = null;

  constructor() {
    this.firstToken = new Promise<void>((resolve, reject) => {
      this.resolveFirst = resolve;
      this.rejectFirst = reject;
    });
    // Rejections are read by the dispatcher; this keeps one that nobody awaits (an abort after
    // the start) from being reported as unhandled.
    this.firstToken.catch(() => {});
  }

  /** Whether the response has fully arrived or failed. */
  get finished(): boolean {
    return this.ended || this.failure !== null;
  }

  /**
   * The next event: at once when one is waiting, else a promise of it; undefined after the last
   * one. Throws (or rejects) with the failure once the events before it have been read.
   */
  next(): GenerateEvent | undefined | Promise<GenerateEvent | undefined> {
    if (this.head < this.queue.length) return this.queue[this.head++];
    if (this.failure) throw this.failure;
    if (this.ended) return undefined;
    return new Promise((resolve, reject) => {
      this.waiter = () => {
        try {
          resolve(this.next() as GenerateEvent | undefined);
        } catch (err) {
          reject(err as Error);
        }
      };
    });
  }

  /** Stops the response (the connection is closed, so the worker stops generating); queued events are dropped. */
  abort(reason: Error): void {
    if (this.finished) return;
    this.fail(reason);
    this.controller?.abort(reason);
  }

  /**
   * Done with the response: an unfinished one is aborted, except one whose `end` event is in,
   * which gets a moment to end on its own so its keep-alive connection survives.
   */
  close(reason: Error): void {
    if (this.finished) return;
    if (!this.sawEnd) return this.abort(reason);
    setTimeout(() => this.abort(reason), END_GRACE_MS).unref();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.failure) controller.abort(this.failure);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.failure) return;
    if (this.status !== 200) {
      if (this.errorText.length < MAX_ERROR_BODY) this.errorText += chunk.toString('utf8');
      return;
    }
    const before = this.queue.length;
    try {
      this.reader.write(chunk, this.queue);
    } catch (err) {
      this.take(before);
      this.fail(err as Error);
      controller.abort(err as Error);
      return;
    }
    this.take(before);
  }

  onResponseEnd(): void {
    if (this.failure) return;
    if (this.status !== 200) return this.fail(refusal(this.status, this.errorText.slice(0, MAX_ERROR_BODY)));
    const before = this.queue.length;
    try {
      this.reader.end(this.queue);
    } catch (err) {
      this.take(before);
      return this.fail(err as Error);
    }
    this.take(before);
    this.ended = true;
    if (!this.started) this.rejectFirst(new AppError('WORKER_ERROR', 'worker ended the stream before the first token'));
    this.wake();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.failure) return;
    if (this.status === 0 && !(error instanceof AppError)) this.unreachable = true;
    this.fail(error);
  }

  /** Looks at events queued from `from` on: the start of the generation, or an error before it. */
  private take(from: number): void {
    if (!this.started) {
      for (let i = from; i < this.queue.length; i++) {
        const e = this.queue[i]!;
        if (e.type === 'error') {
          const err = eventError(e);
          this.queue.length = i;
          this.fail(err);
          this.controller?.abort(err);
          return;
        }
        if (e.type === 'token' || e.type === 'end') {
          this.started = true;
          this.resolveFirst();
          break;
        }
      }
    }
    if (!this.sawEnd) for (let i = from; i < this.queue.length; i++) if (this.queue[i]!.type === 'end') this.sawEnd = true;
    if (this.queue.length > from) this.wake();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    // After an abort nobody reads what was queued: the caller has stopped or is about to.
    if (err instanceof AppError && (err.code === 'CANCELLED' || err.code === 'WORKER_TIMEOUT' || err.code === 'SERVICE_UNAVAILABLE')) this.head = this.queue.length;
    if (!this.started) this.rejectFirst(err);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w();
    }
  }
}
