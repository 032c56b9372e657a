/**
 * What the gateway did in the last minute, as the operator console shows it: answers each worker
 * streamed, fallback answers by reason, errors by their wire code, and 429s by the asking
 * tenant's tier. One replica's own counts (each replica answers /admin/status for itself).
 */
import type { ErrorCode } from '../../shared/errors.js';
import type { AnswerEnd } from '../answer/pipeline.js';
import { RollingCounts } from './rolling-counts.js';

export interface LastMinute {
  /** Answers a worker started streaming, by worker URL. */
  by_worker: Record<string, number>;
  /** Fallback answers, by why the fallback answered (`forced`, `breaker_open`, ...). */
  fallback_by_reason: Record<string, number>;
  /** Error answers, by the code clients see (`rate_limited`, `worker_error`, ...), SSE error chunks included. */
  errors_by_code: Record<string, number>;
  /** 429s, by the tier of the tenant refused. */
  limited_by_tier: Record<string, number>;
}

/** A refused caller whose tenant was not known yet (no tier to count it under). */
export const UNKNOWN_TIER = 'unknown';

export class Activity {
  private readonly byWorker: RollingCounts;
  private readonly fallback: RollingCounts;
  private readonly errors: RollingCounts;
  private readonly limited: RollingCounts;

  constructor(windowMs = 60_000, now: () => number = Date.now) {
    const make = () => new RollingCounts(windowMs, Math.min(1000, windowMs), now);
    this.byWorker = make();
    this.fallback = make();
    this.errors = make();
    this.limited = make();
  }

  /** One answer ended (the answer hooks' `onAnswerEnd`). */
  answerEnded(end: AnswerEnd): void {
    if (end.worker !== undefined) this.byWorker.add(end.worker);
    if (end.degraded) this.fallback.add(end.degraded.reason);
    if (end.streamError !== undefined) this.errors.add(end.streamError.toLowerCase());
  }

  /**
   * One error answer sent by the error handler. A client that went away is not counted: nothing
   * was sent to it.
   */
  failed(code: ErrorCode, tier: string | undefined): void {
    if (code === 'CANCELLED') return;
    this.errors.add(code.toLowerCase());
    if (code === 'RATE_LIMITED') this.limited.add(tier ?? UNKNOWN_TIER);
  }

  lastMinute(): LastMinute {
    return {
      by_worker: this.byWorker.counts(),
      fallback_by_reason: this.fallback.counts(),
      errors_by_code: this.errors.counts(),
      limited_by_tier: this.limited.counts(),
    };
  }
}
