/**
 * Sends one generation to the worker pool and hands back a live event stream.
 *
 * Algorithm: pick the least-loaded healthy worker that serves the adapter, POST /v1/generate,
 * and wait until the first token (or the end) has arrived; only then is the stream returned, so
 * everything before it can still be retried elsewhere. A worker that refuses with a client error
 * (4xx: context too long, unknown adapter) ends the dispatch with that error at once; an
 * OVERLOADED 503, another 5xx, a connection failure, an `error` event or the time-to-first-token
 * timeout moves on to the next worker, up to `maxAttempts` workers.
 *
 * Cancellation: `cancel` (the client's disconnect, the total timeout, the breaker's timeout)
 * aborts the response, which closes the connection; the worker sees the close and stops the
 * generation. On failure nothing is left open: each attempt releases its worker.
 * The response itself is read by worker-response.ts.
 */
import { AppError } from '../../shared/errors.js';
import type { GenerateEvent, GenerateRequestInput } from '../../protocol/schemas.js';
import type { Cancel } from './cancel.js';
import type { GatewayMetrics } from '../plugins/metrics.js';
import type { WorkerPool, WorkerTarget } from './pool.js';
import { WorkerResponse } from './worker-response.js';

export interface DispatchOptions {
  ttftTimeoutMs: number;
  maxAttempts: number;
}

/** A generation that has started streaming on a worker. */
export interface WorkerStream {
  worker: WorkerTarget;
  /**
   * The next event, from the first one the worker sent (at once when it is in, else a promise);
   * undefined after the last. Throws (rejects) on failure.
   */
  next(): GenerateEvent | undefined | Promise<GenerateEvent | undefined>;
  /** Releases the worker and, when the response is not over, the connection; safe to call more than once. */
  close(): void;
}

const HEADERS = { 'content-type': 'application/json' };
const CLOSED = new AppError('CANCELLED', 'the answer was closed');

function abortReason(cancel: Cancel): AppError {
  return cancel.reason ?? new AppError('CANCELLED', 'the request was cancelled');
}

export class Dispatcher {
  constructor(
    private readonly pool: WorkerPool,
    private readonly options: DispatchOptions,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Starts `request` on some worker. Rejects with an AppError when no worker could start it. */
  async dispatch(request: GenerateRequestInput, cancel: Cancel): Promise<WorkerStream> {
    let tried: Set<WorkerTarget> | undefined;
    const body = JSON.stringify(request);
    let lastError: AppError | null = null;
    for (let attempt = 0; attempt < this.options.maxAttempts; attempt++) {
      if (cancel.aborted) throw abortReason(cancel);
      const worker = this.pool.pick(request.adapter, tried);
      if (!worker) break;
      try {
        const stream = await this.attempt(worker, body, cancel);
        this.metrics.workerAttempt('ok');
        return stream;
      } catch (err) {
        const e = err instanceof AppError ? err : new AppError('WORKER_ERROR', (err as Error).message, { cause: err });
        if (cancel.aborted) {
          this.metrics.workerAttempt('cancelled');
          throw abortReason(cancel);
        }
        if (e.isClientError) {
          this.metrics.workerAttempt('client_error');
          throw e;
        }
        this.metrics.workerAttempt(e.code === 'OVERLOADED' ? 'overloaded' : e.code === 'WORKER_TIMEOUT' ? 'timeout' : 'failed');
        lastError = e;
        (tried ??= new Set()).add(worker);
      }
    }
    if (lastError) throw lastError;
    throw new AppError('NO_HEALTHY_WORKER', 'no healthy worker can take the request');
  }

  private async attempt(worker: WorkerTarget, body: string, cancel: Cancel): Promise<WorkerStream> {
    const response = new WorkerResponse();
    cancel.onAbort((reason) => response.abort(reason));
    const ttft = setTimeout(() => response.abort(new AppError('WORKER_TIMEOUT', `no first token within ${this.options.ttftTimeoutMs} ms`)), this.options.ttftTimeoutMs);
    this.pool.acquire(worker);
    let released = false;
    const close = () => {
      if (released) return;
      released = true;
      clearTimeout(ttft);
      cancel.onAbort(null);
      this.pool.release(worker);
      response.close(cancel.aborted ? abortReason(cancel) : CLOSED);
    };
    // Our own timers bound the wait; undici's defaults (5 min) would only add a second clock.
    worker.client.dispatch({ method: 'POST', path: '/v1/generate', headers: HEADERS, body, headersTimeout: 0, bodyTimeout: 0 }, response);
    try {
      await response.firstToken;
    } catch (err) {
      close();
      if (cancel.aborted) throw abortReason(cancel);
      if (response.unreachable) {
        // The request never reached a worker that answers: take it out until a health check passes.
        this.pool.markFailed(worker, (err as Error).message);
        throw new AppError('WORKER_ERROR', `worker ${worker.url} unreachable: ${(err as Error).message}`, { cause: err });
      }
      throw err;
    }
    clearTimeout(ttft);
    return { worker, next: () => response.next(), close };
  }
}
