/**
 * Sends one generation to the worker pool and hands back a live NDJSON event stream.
 *
 * Algorithm: pick the least-loaded healthy worker that serves the adapter, POST /v1/generate,
 * and read events until the first token (or the end) arrives; only then is the stream returned,
 * so everything before it can still be retried elsewhere. A worker that refuses with a client
 * error (4xx: context too long, unknown adapter) ends the dispatch with that error at once; an
 * OVERLOADED 503, another 5xx, a connection failure, an `error` event or the time-to-first-token
 * timeout moves on to the next worker, up to `maxAttempts` workers.
 *
 * Cancellation: `signal` (the client's disconnect, the total timeout, the breaker's timeout)
 * aborts the undici request, which closes the connection; the worker sees the close and stops
 * the generation. On failure nothing is left open: each attempt releases its worker and drains
 * or destroys its body.
 */
import { Readable } from 'node:stream';
import { AppError, ERROR_STATUS, isErrorCode } from '../shared/errors.js';
import { GenerateEventSchema, type GenerateEvent, type GenerateRequestInput } from '../shared/protocol.js';
import type { GatewayMetrics } from './metrics.js';
import type { WorkerPool, WorkerTarget } from './pool.js';

export interface DispatchOptions {
  ttftTimeoutMs: number;
  maxAttempts: number;
}

/** A generation that has started streaming on a worker. */
export interface WorkerStream {
  worker: WorkerTarget;
  /** Events read while waiting for the first token; the caller renders them first. */
  pending: GenerateEvent[];
  /** The rest of the stream. Ends after an `end` or `error` event. */
  rest: AsyncIterator<GenerateEvent>;
  /** Releases the worker and the connection; safe to call more than once. */
  close(): void;
}

/** Longest error body read back from a worker that refused a request. */
const MAX_ERROR_BODY = 64 * 1024;

/** Reads NDJSON events from a body. Hand-written: a line split over a string stream is all it takes. */
export async function* readEvents(body: Readable): AsyncGenerator<GenerateEvent> {
  body.setEncoding('utf8');
  let buffer = '';
  for await (const chunk of body as AsyncIterable<string>) {
    buffer += chunk;
    let nl = buffer.indexOf('\n');
    while (nl >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.trim() !== '') yield parseEvent(line);
      nl = buffer.indexOf('\n');
    }
  }
  if (buffer.trim() !== '') yield parseEvent(buffer);
}

export function parseEvent(line: string): GenerateEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new AppError('WORKER_ERROR', 'worker sent a line that is not JSON');
  }
  const parsed = GenerateEventSchema.safeParse(value);
  if (!parsed.success) throw new AppError('WORKER_ERROR', `worker sent an invalid event (${parsed.error.issues[0]?.path.join('.') || 'type'})`);
  return parsed.data;
}

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

function abortReason(signal: AbortSignal): AppError {
  const r: unknown = signal.reason;
  return r instanceof AppError ? r : new AppError('CANCELLED', 'the request was cancelled');
}

export class Dispatcher {
  constructor(
    private readonly pool: WorkerPool,
    private readonly options: DispatchOptions,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Starts `request` on some worker. Rejects with an AppError when no worker could start it. */
  async dispatch(request: GenerateRequestInput, signal: AbortSignal): Promise<WorkerStream> {
    const tried = new Set<WorkerTarget>();
    const body = JSON.stringify(request);
    let lastError: AppError | null = null;
    for (let attempt = 0; attempt < this.options.maxAttempts; attempt++) {
      if (signal.aborted) throw abortReason(signal);
      const worker = this.pool.pick(request.adapter, tried);
      if (!worker) break;
      tried.add(worker);
      try {
        return await this.attempt(worker, body, signal);
      } catch (err) {
        const e = err instanceof AppError ? err : new AppError('WORKER_ERROR', (err as Error).message, { cause: err });
        if (signal.aborted) {
          this.metrics.workerAttempts.labels('cancelled').inc();
          throw abortReason(signal);
        }
        if (e.isClientError) {
          this.metrics.workerAttempts.labels('client_error').inc();
          throw e;
        }
        this.metrics.workerAttempts.labels(e.code === 'OVERLOADED' ? 'overloaded' : e.code === 'WORKER_TIMEOUT' ? 'timeout' : 'failed').inc();
        lastError = e;
      }
    }
    if (lastError) throw lastError;
    throw new AppError('NO_HEALTHY_WORKER', 'no healthy worker can take the request');
  }

  private async attempt(worker: WorkerTarget, body: string, outer: AbortSignal): Promise<WorkerStream> {
    const local = new AbortController();
    const signal = AbortSignal.any([outer, local.signal]);
    const ttft = setTimeout(
      () => local.abort(new AppError('WORKER_TIMEOUT', `no first token within ${this.options.ttftTimeoutMs} ms`)),
      this.options.ttftTimeoutMs,
    );
    this.pool.acquire(worker);
    let released = false;
    let res: Awaited<ReturnType<WorkerTarget['client']['request']>> | undefined;
    const close = () => {
      if (released) return;
      released = true;
      clearTimeout(ttft);
      this.pool.release(worker);
      if (res && !res.body.destroyed) res.body.destroy();
    };
    try {
      try {
        res = await worker.client.request({
          method: 'POST',
          path: '/v1/generate',
          headers: { 'content-type': 'application/json' },
          body,
          signal,
          // Our own timers bound the wait; undici's defaults (5 min) would only add a second clock.
          headersTimeout: 0,
          bodyTimeout: 0,
        });
      } catch (err) {
        if (signal.aborted) throw abortReason(signal);
        // The request never reached a worker that answers: take it out until a health check passes.
        this.pool.markFailed(worker, (err as Error).message);
        throw new AppError('WORKER_ERROR', `worker ${worker.url} unreachable: ${(err as Error).message}`, { cause: err });
      }
      if (res.statusCode !== 200) throw await refusal(res.statusCode, res.body);
      const events = readEvents(res.body);
      const pending: GenerateEvent[] = [];
      for (;;) {
        let next: IteratorResult<GenerateEvent>;
        try {
          next = await events.next();
        } catch (err) {
          if (signal.aborted) throw abortReason(signal);
          throw err;
        }
        if (next.done) throw new AppError('WORKER_ERROR', 'worker ended the stream before the first token');
        const event = next.value;
        if (event.type === 'error') throw eventError(event);
        pending.push(event);
        if (event.type === 'token' || event.type === 'end') break;
      }
      clearTimeout(ttft);
      return { worker, pending, rest: events, close };
    } catch (err) {
      close();
      throw err;
    }
  }
}

async function refusal(status: number, body: Readable & { text(): Promise<string> }): Promise<AppError> {
  let text = '';
  try {
    text = (await body.text()).slice(0, MAX_ERROR_BODY);
  } catch {
    // The body is only a hint; the status decides.
  }
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
