/**
 * Which waiting request the scheduler admits next: first come first served, or fair between
 * tenants by the Virtual Token Counter (Sheng et al., "Fairness in Serving Large Language Models",
 * OSDI 2024, algorithm 2 with weights).
 *
 * VTC: each tenant has a counter of the service it received, in weighted tokens: a prompt token
 * costs `promptCost`, a generated token `outputCost`, divided by the weight of the tenant's tier.
 * The next request admitted is the earliest of the backlogged tenant (one with waiting requests)
 * whose counter is lowest. When a tenant becomes backlogged its counter is lifted to at least the
 * lowest counter of the tenants already waiting, or, when none is, to the counter of the tenant
 * that was admitted last: service a tenant did not ask for while it was idle is not owed to it
 * later, so an idle tenant cannot bank credit and then shut the others out. What follows (the
 * paper's theorems, and the unit tests): two tenants backlogged together see their counters stay
 * within a bound of each other (the largest single charge), so each gets its weight's share of
 * what is served while it waits; no backlogged tenant waits forever, since every admission raises
 * the admitted tenant's counter; and a tenant alone gets everything (the policy never holds a
 * row free while someone waits).
 *
 * Hand-written: no maintained npm package implements VTC, and the scheduler needs the counters
 * it charges per token, not a generic priority queue.
 */

export type SchedulerPolicy = 'fair' | 'fcfs';

/** Who a request is for; requests without a tenant share one anonymous tenant. */
export interface Requester {
  tenant?: string | undefined;
  tier?: string | undefined;
}

export interface AdmissionQueue<T> {
  readonly length: number;
  push(item: T, who: Requester): void;
  /** The request to admit next, or undefined when none waits. */
  peek(): T | undefined;
  /** Removes an admitted request from the queue; `promptTokens` is charged to its tenant. */
  admit(item: T, promptTokens: number): void;
  /** Removes a request that will not run (cancelled, refused). */
  remove(item: T): void;
  /** Charges generated tokens to a running request's tenant. */
  served(item: T, outputTokens: number): void;
  /** The request has ended (after admit): its tenant may be forgotten once idle. */
  finished(item: T): void;
  /** Every waiting request, in arrival order. */
  items(): T[];
}

export class FcfsQueue<T> implements AdmissionQueue<T> {
  private readonly queue: T[] = [];

  get length(): number {
    return this.queue.length;
  }

  push(item: T): void {
    this.queue.push(item);
  }

  peek(): T | undefined {
    return this.queue[0];
  }

  admit(item: T): void {
    this.remove(item);
  }

  remove(item: T): void {
    const i = this.queue.indexOf(item);
    if (i >= 0) this.queue.splice(i, 1);
  }

  served(): void {}

  finished(): void {}

  items(): T[] {
    return [...this.queue];
  }
}

export interface VtcOptions {
  /** Tier name → weight (a weight-2 tier gets twice the service of a weight-1 tier when both wait). */
  tierWeights: Readonly<Record<string, number>>;
  /** Weight of a tier not in `tierWeights`, or of a request without tier. */
  defaultWeight?: number;
  promptCost?: number;
  outputCost?: number;
  /** Idle tenants kept before those that would be lifted anyway are forgotten. */
  maxIdleTenants?: number;
}

interface Tenant {
  readonly name: string;
  counter: number;
  readonly waiting: unknown[];
  running: number;
}

interface Entry {
  tenant: Tenant;
  weight: number;
  seq: number;
}

const ANONYMOUS = '\u0000anonymous';

export class VtcQueue<T> implements AdmissionQueue<T> {
  private readonly tenants = new Map<string, Tenant>();
  private readonly entries = new Map<T, Entry>();
  private readonly backlogged = new Set<Tenant>();
  /** Counter of the tenant admitted last: the floor for a tenant arriving to an empty queue. */
  private lastAdmitted = 0;
  private nextSeq = 0;
  private readonly promptCost: number;
  private readonly outputCost: number;
  private readonly defaultWeight: number;
  private readonly maxIdle: number;

  constructor(private readonly options: VtcOptions) {
    this.promptCost = options.promptCost ?? 1;
    // The paper weighs an output token twice an input token: it costs a decode step.
    this.outputCost = options.outputCost ?? 2;
    this.defaultWeight = options.defaultWeight ?? 1;
    this.maxIdle = options.maxIdleTenants ?? 4096;
  }

  get length(): number {
    return this.entries.size;
  }

  /** A tenant's counter (tests and diagnostics). */
  counter(tenant: string | undefined): number {
    return this.tenants.get(tenant ?? ANONYMOUS)?.counter ?? 0;
  }

  weightOf(tier: string | undefined): number {
    const w = tier === undefined ? undefined : this.options.tierWeights[tier];
    return w !== undefined && w > 0 ? w : this.defaultWeight;
  }

  push(item: T, who: Requester): void {
    const name = who.tenant ?? ANONYMOUS;
    let tenant = this.tenants.get(name);
    if (!tenant) {
      tenant = { name, counter: 0, waiting: [], running: 0 };
      this.tenants.set(name, tenant);
    }
    if (tenant.waiting.length === 0) {
      tenant.counter = Math.max(tenant.counter, this.floor());
      this.backlogged.add(tenant);
    }
    tenant.waiting.push(item);
    this.entries.set(item, { tenant, weight: this.weightOf(who.tier), seq: this.nextSeq++ });
    if (this.tenants.size > this.maxIdle) this.forgetIdle();
  }

  /** The counter a tenant that starts waiting is lifted to. */
  private floor(): number {
    if (this.backlogged.size === 0) return this.lastAdmitted;
    let min = Infinity;
    for (const t of this.backlogged) min = Math.min(min, t.counter);
    return min;
  }

  peek(): T | undefined {
    let best: Tenant | undefined;
    let bestSeq = Infinity;
    for (const t of this.backlogged) {
      const head = t.waiting[0] as T;
      const seq = this.entries.get(head)!.seq;
      // Ties go to the earlier request, so equal tenants alternate in arrival order.
      if (!best || t.counter < best.counter || (t.counter === best.counter && seq < bestSeq)) {
        best = t;
        bestSeq = seq;
      }
    }
    return best?.waiting[0] as T | undefined;
  }

  admit(item: T, promptTokens: number): void {
    const e = this.entries.get(item);
    if (!e) return;
    this.dequeue(item, e);
    e.tenant.running++;
    e.tenant.counter += (this.promptCost * promptTokens) / e.weight;
    this.lastAdmitted = e.tenant.counter;
    this.running.set(item, e);
  }

  private readonly running = new Map<T, Entry>();

  remove(item: T): void {
    const e = this.entries.get(item);
    if (e) this.dequeue(item, e);
  }

  private dequeue(item: T, e: Entry): void {
    this.entries.delete(item);
    const w = e.tenant.waiting;
    w.splice(w.indexOf(item), 1);
    if (w.length === 0) this.backlogged.delete(e.tenant);
  }

  served(item: T, outputTokens: number): void {
    const e = this.running.get(item);
    if (e) e.tenant.counter += (this.outputCost * outputTokens) / e.weight;
  }

  finished(item: T): void {
    const e = this.running.get(item);
    if (!e) return;
    this.running.delete(item);
    e.tenant.running--;
  }

  items(): T[] {
    return [...this.entries.entries()].sort((a, b) => a[1].seq - b[1].seq).map(([item]) => item);
  }

  /**
   * Forgets idle tenants whose counter is at or below the floor: when they come back they are
   * lifted to the floor anyway (which does not fall), so nothing is lost and the map stays bounded.
   */
  private forgetIdle(): void {
    const floor = this.floor();
    for (const [name, t] of this.tenants) {
      if (t.waiting.length === 0 && t.running === 0 && t.counter <= floor) this.tenants.delete(name);
    }
  }
}
