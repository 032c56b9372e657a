/**
 * The circuit breaker around dispatch (opossum 9).
 *
 * A call succeeds when a worker has started streaming (see dispatch.ts); what happens after the
 * first token is no longer the breaker's business. Client errors (4xx relayed from a worker) and
 * the client's own cancellation are filtered: they say nothing about the workers' health.
 * Each call carries its own Cancel (opossum's shared `abortController` option would
 * abort every call at once); on opossum's timeout we abort just that call.
 */
import type { EventEmitter } from 'node:events';
import CircuitBreaker from 'opossum';
import { AppError } from '../../shared/errors.js';
import type { GenerateRequestInput } from '../../protocol/schemas.js';
import type { Cancel } from './cancel.js';
import type { GatewayConfig } from '../config.js';
import type { Dispatcher, WorkerStream } from './dispatcher.js';
import { BREAKER_EVENTS, type GatewayMetrics } from '../plugins/metrics.js';

export type BreakerState = 'closed' | 'half-open' | 'open';

const STATE_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** One dispatch: the caller's cancellation and, once started, the stream it produced. */
interface Call {
  cancel: Cancel;
  request: GenerateRequestInput;
  stream: WorkerStream | null;
}

export function isFilteredError(err: unknown): boolean {
  return err instanceof AppError && (err.isClientError || err.code === 'CANCELLED');
}

export class DispatchBreaker {
  private readonly breaker: CircuitBreaker<[Call], WorkerStream>;

  constructor(dispatcher: Dispatcher, options: GatewayConfig['breaker'], metrics: GatewayMetrics) {
    this.breaker = new CircuitBreaker(
      async (call: Call) => {
        const stream = await dispatcher.dispatch(call.request, call.cancel);
        if (call.cancel.aborted) {
          // Aborted (timeout, client gone) just as the stream started: nobody will read it.
          stream.close();
          throw call.cancel.reason;
        }
        call.stream = stream;
        return stream;
      },
      {
        name: 'dispatch',
        enabled: options.enabled,
        timeout: options.timeoutMs === 0 ? false : options.timeoutMs,
        errorThresholdPercentage: options.errorThresholdPercentage,
        resetTimeout: options.resetTimeoutMs,
        rollingCountTimeout: options.rollingCountTimeoutMs,
        rollingCountBuckets: options.rollingCountBuckets,
        volumeThreshold: options.volumeThreshold,
        capacity: options.capacity,
        allowWarmUp: options.allowWarmUp,
        rollingPercentilesEnabled: options.rollingPercentilesEnabled,
        errorFilter: isFilteredError,
      },
    );
    // The typings omit the listener's arguments; opossum passes (error, latency, args).
    const events = this.breaker as unknown as EventEmitter;
    events.on('timeout', (_err: unknown, _latency: unknown, args: [Call]) => {
      args[0].cancel.abort(new AppError('WORKER_TIMEOUT', `no worker started streaming within ${options.timeoutMs} ms`));
    });
    for (const event of BREAKER_EVENTS) {
      const child = metrics.breakerEvents.labels(event);
      events.on(event, () => child.inc());
    }
    const setState = () => metrics.breakerState.set(STATE_VALUE[this.state]);
    this.breaker.on('open', setState);
    this.breaker.on('halfOpen', setState);
    this.breaker.on('close', setState);
    setState();
  }

  get state(): BreakerState {
    if (this.breaker.opened) return 'open';
    if (this.breaker.halfOpen) return 'half-open';
    return 'closed';
  }

  /**
   * Dispatches through the breaker. Rejects with AppError BREAKER_OPEN when it is open, the
   * dispatch's own AppError otherwise.
   */
  async fire(request: GenerateRequestInput, cancel: Cancel): Promise<WorkerStream> {
    const call: Call = { cancel, request, stream: null };
    try {
      return await this.breaker.fire(call);
    } catch (err) {
      // The breaker gave up (timeout) after the dispatch had already started: do not leak it.
      call.stream?.close();
      const code = (err as { code?: string }).code;
      if (code === 'EOPENBREAKER') throw new AppError('BREAKER_OPEN', 'the circuit breaker is open: workers are failing');
      if (code === 'ESEMLOCKED') throw new AppError('OVERLOADED', 'too many dispatches at once');
      if (code === 'ETIMEDOUT') throw new AppError('WORKER_TIMEOUT', 'no worker started streaming in time');
      if (code === 'ESHUTDOWN') throw new AppError('NOT_READY', 'the gateway is shutting down');
      throw err;
    }
  }

  shutdown(): void {
    this.breaker.shutdown();
  }
}
