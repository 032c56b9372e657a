/**
 * Counts by key over a sliding window (the operator console's "last minute"), in one-second
 * slots: a ring of `windowMs / slotMs` maps, each holding one slot's counts and stamped with the
 * slot it holds; a slot whose stamp is old is emptied when the clock comes back to it. Adding is
 * one map update; reading sums the slots still inside the window, so a count leaves the window
 * at most one slot late.
 *
 * Hand-written: prom-client counts from the start of the process (a last-minute figure would
 * need a Prometheus query, which the console must not depend on), opossum's rolling window is
 * internal to its breaker, and this is the forty lines it takes.
 */

export class RollingCounts {
  private readonly slots: Array<Map<string, number>>;
  /** The slot number (time / slotMs) each slot holds; -1: empty. */
  private readonly stamps: Float64Array;

  constructor(
    windowMs = 60_000,
    private readonly slotMs = 1000,
    private readonly now: () => number = Date.now,
  ) {
    const n = Math.ceil(windowMs / slotMs);
    this.slots = Array.from({ length: n }, () => new Map());
    this.stamps = new Float64Array(n).fill(-1);
  }

  add(key: string, n = 1): void {
    const slot = Math.floor(this.now() / this.slotMs);
    const i = slot % this.slots.length;
    const counts = this.slots[i]!;
    if (this.stamps[i] !== slot) {
      counts.clear();
      this.stamps[i] = slot;
    }
    counts.set(key, (counts.get(key) ?? 0) + n);
  }

  /** Counts by key within the window, keys in the order first seen; keys at zero are absent. */
  counts(): Record<string, number> {
    const current = Math.floor(this.now() / this.slotMs);
    const oldest = current - this.slots.length + 1;
    // No prototype: a key is only ever a count, whatever its text.
    const out = Object.create(null) as Record<string, number>;
    for (let i = 0; i < this.slots.length; i++) {
      const stamp = this.stamps[i]!;
      if (stamp < oldest || stamp > current) continue;
      for (const [key, n] of this.slots[i]!) out[key] = (out[key] ?? 0) + n;
    }
    return out;
  }
}
