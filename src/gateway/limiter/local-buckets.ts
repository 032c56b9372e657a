/**
 * In-process token buckets: what the limiter uses while Redis is away under the `local` outage
 * policy, or always when the gateway runs without Redis.
 *
 * Algorithm: the same as the Redis script (bucket-script.ts) on the process's monotonic clock,
 * with each bucket shrunk to its share, burst ÷ replicas and rate ÷ replicas, so N replicas
 * deciding alone admit about what the shared bucket would. A cost above a shrunk bucket (but
 * within the shared one) is admitted when that bucket is full and leaves it in debt, so a large
 * request is slowed, not refused for the whole outage.
 *
 * What is atomic: one `take` (JavaScript runs it to the end). Nothing here can fail. Buckets that
 * are full again are dropped by `sweep`, so idle tenants cost no memory.
 */
import type { BucketCall, ScriptReply } from './bucket-script.js';

interface LocalState {
  level: number; // tokens
  atMs: number; // monotonic ms of `level`
  fullAtMs: number;
}

export class LocalBuckets {
  private readonly buckets = new Map<string, LocalState>();

  constructor(private readonly replicas: number) {}

  get size(): number {
    return this.buckets.size;
  }

  take(calls: readonly BucketCall[], nowMs = performance.now()): ScriptReply {
    const shares = calls.map((c) => {
      const capacity = Math.max(1, Math.floor(c.burst / this.replicas));
      const perMs = c.perMinute / this.replicas / 60_000;
      const state = this.buckets.get(c.key);
      let level = capacity;
      if (state) level = Math.min(capacity, state.level + (nowMs - state.atMs) * perMs);
      level = Math.min(capacity, level + c.refund);
      return { capacity, perMs, level };
    });
    const fits = calls.every((c, i) => {
      const { capacity, level } = shares[i]!;
      return level >= c.cost || (c.cost > capacity && level >= capacity);
    });
    const buckets = calls.map((c, i) => {
      const { capacity, perMs } = shares[i]!;
      let level = shares[i]!.level;
      if (fits) level -= c.cost;
      if (level >= capacity) this.buckets.delete(c.key);
      else this.buckets.set(c.key, { level, atMs: nowMs, fullAtMs: nowMs + (capacity - level) / perMs });
      const need = Math.min(c.cost, capacity);
      return {
        remaining: Math.max(0, Math.floor(level)),
        resetMs: Math.ceil((capacity - level) / perMs),
        waitMs: fits || level >= need ? 0 : Math.ceil((need - level) / perMs),
      };
    });
    return { nowUs: Math.round(nowMs * 1000), allowed: fits, buckets };
  }

  /** Drops the buckets that are full again (the same as absent). */
  sweep(nowMs = performance.now()): void {
    for (const [key, state] of this.buckets) if (state.fullAtMs <= nowMs) this.buckets.delete(key);
  }

  clear(): void {
    this.buckets.clear();
  }
}
