/**
 * The cancellation of one answer: whoever stops it (the client's disconnect, the total timeout,
 * the breaker's timeout, a drain) calls `abort` with the reason, and the one part working on it
 * at that moment (the worker attempt in flight) is told.
 *
 * Not AbortController: each one carries an EventTarget, and making one per answer plus adding and
 * removing its listener showed as about 4% of the gateway's CPU at full load, for a signal that
 * never needs more than one listener.
 */
import type { AppError } from '../../shared/errors.js';

export class Cancel {
  aborted = false;
  reason: AppError | undefined = undefined;
  private listener: ((reason: AppError) => void) | null = null;

  /** Cancels once; later calls keep the first reason. */
  abort(reason: AppError): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listener = this.listener;
    this.listener = null;
    listener?.(reason);
  }

  /** Sets the listener told on abort (replacing the one before); null removes it. */
  onAbort(listener: ((reason: AppError) => void) | null): void {
    this.listener = listener;
  }
}
