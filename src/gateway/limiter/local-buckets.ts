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
import { costOf, refundOf, type BucketSpec, type ScriptReply, type Take } from './bucket-script.js';

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

  /** The script's decision (bucket-script.ts), made here; the reply has the same layout. */
  take(specs: readonly BucketSpec[], take: Take, nowMs = performance.now()): ScriptReply {
    const shares = specs.map((spec) => {
      const capacity = Math.max(1, Math.floor(spec.burst / this.replicas));
      const perMs = spec.perMinute / this.replicas / 60_000;
      const state = this.buckets.get(spec.key);
      let level = capacity;
      if (state) level = Math.min(capacity, state.level + (nowMs - state.atMs) * perMs);
      level = Math.min(capacity, level + refundOf(spec, take));
      return { capacity, perMs, level, cost: costOf(spec, take) };
    });
    const fits = shares.every(({ capacity, level, cost }) => level >= cost || (cost > capacity && level >= capacity));
    const reply: ScriptReply = [Math.round(nowMs * 1000), fits ? 1 : 0];
    specs.forEach((spec, i) => {
      const { capacity, perMs, cost } = shares[i]!;
      let level = shares[i]!.level;
      if (fits) level -= cost;
      if (level >= capacity) this.buckets.delete(spec.key);
      else this.buckets.set(spec.key, { level, atMs: nowMs, fullAtMs: nowMs + (capacity - level) / perMs });
      const need = Math.min(cost, capacity);
      reply.push(
        Math.max(0, Math.floor(level)),
        Math.ceil((capacity - level) / perMs),
        fits || level >= need ? 0 : Math.ceil((need - level) / perMs),
      );
    });
    return reply;
  }

  /** Drops the buckets that are full again (the same as absent). */
  sweep(nowMs = performance.now()): void {
    for (const [key, state] of this.buckets) if (state.fullAtMs <= nowMs) this.buckets.delete(key);
  }

  clear(): void {
    this.buckets.clear();
  }
}
