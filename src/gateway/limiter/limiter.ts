/**
 * The limiter: one decision per request, one Redis command per admitted request.
 *
 * Algorithm: a request's buckets (its tenant's request and LLM-token buckets, and the global
 * ones when configured) are checked and taken together by the bucket script (bucket-script.ts).
 * The LLM-token cost is a reservation, prompt tokens + max_tokens; when the answer ends,
 * `settle` gives back what it did not use. Refunds are not sent on their own: they wait in
 * `pending`, keyed by subject, and ride on that subject's next admission call, which adds them
 * to its buckets before taking; a timer sends the ones that have waited `refundFlushMs` (a tenant
 * that went quiet). So a steady stream of requests costs exactly one command each.
 *
 * Every outcome is data, a Decision with its `outcome` (allowed, limited, too_large, fail_open,
 * fail_closed) and what the caller needs to say why, as upstash's RatelimitResponse is; only the
 * HTTP edge (plugin.ts) turns a refusal into an error. A cost above a bucket's burst could never
 * be admitted, so it is `too_large` before Redis is asked (an endless 429 would be a lie).
 *
 * Batching: the admissions that arrive in the same turn of the event loop (or within
 * `batch.windowUs`) leave together, as one script call that takes for each request in arrival
 * order, all or nothing per request (bucket-script.ts). Redis runs the whole script before
 * anything else, so a batch admits exactly what one call each in that order would: the limits
 * stay exact across replicas, and Redis and client work per request fall with the batch size.
 * Refund flushes batch the same way. On Redis Cluster a batch holds only requests whose keys
 * share a hash slot (the hash tag of their keys), one batch per tag.
 *
 * What is atomic: each script call. Across replicas nothing else is shared: the exactness of the
 * limits comes from Redis running scripts one at a time.
 *
 * On failure: when Redis is not connected, or a command fails (no offline queue, a short command
 * timeout), the outage policy decides: `local` takes from in-process buckets of capacity ÷
 * replicas, `fail-open` admits, `fail-closed` refuses (the edge answers 503). After a failure
 * Redis is not asked again for `outage.retryMs`, or until the connection reports ready, so no
 * request waits on a dead Redis. A refund whose command failed is dropped, not retried: the
 * command may have run, and a refund applied twice would hand out tokens nobody returned. The
 * mode in force (and its gauge) follows the connection's `close` and `ready` as well as the
 * commands' results, so that it changes when Redis goes away even while no request comes.
 */
import { Cluster } from 'ioredis';
import type { Logger } from '../../shared/logging.js';
import { repeat, type Repeating } from '../../shared/timer.js';
import { redisErrorKind, type RedisClient } from '../plugins/redis.js';
import {
  defineBucketScript,
  replyAllowed,
  replyRemaining,
  replyResetMs,
  replyWaitMs,
  FIRST_CALL,
  takeBatch,
  type BucketCall,
  type ScriptReply,
  type Take,
} from './bucket-script.js';
import type { BucketConfig, LimitsConfig } from './config.js';
import { KeySpace, type BucketName } from './keys.js';
import { LocalBuckets } from './local-buckets.js';
import { makeDecisionSeries, setMode, type DecisionOutcome, type DecisionSource, type LimiterMetrics, type LimiterMode, type SourceOf } from './metrics.js';
import { Policies, type Subject } from './policy.js';

export interface TokenCost {
  promptTokens: number;
  maxTokens: number;
}

const NO_TOKENS: TokenCost = { promptTokens: 0, maxTokens: 0 };

/** ioredis states of a connection that is gone (a new one is still connecting: not yet gone). */
const CONNECTION_DOWN = new Set(['close', 'reconnecting', 'end']);

export interface BucketState {
  name: BucketName;
  limit: BucketConfig;
  remaining: number;
  /** ms until the bucket is full again */
  resetMs: number;
  /** ms until this request's cost would fit (0 when it fits) */
  waitMs: number;
}

/** LLM tokens taken for one request, to be settled when its answer ends. */
export interface Reservation {
  readonly subject: Subject;
  readonly tokens: number;
  readonly source: 'redis' | 'local';
  settled: boolean;
}

export interface Decision {
  /** `allowed` and `fail_open` admit, the others refuse */
  outcome: DecisionOutcome;
  allowed: boolean;
  source: DecisionSource;
  subject: Subject;
  /** the LLM tokens this request asked for (prompt + max_tokens) */
  tokens: number;
  /** requests, tokens, then the global buckets in force; empty when admitted without checking (fail-open) */
  buckets: BucketState[];
  /** the bucket that was short (the one with the longest wait), or for too_large the one the cost exceeds */
  limitedBy: BucketName | null;
  /** limited: when the cost will fit; fail_closed: when Redis is tried again */
  retryAfterMs: number;
  /** too_large: the most tokens the bucket named by `limitedBy` holds */
  capacity: number | null;
  reservation: Reservation | null;
}

/** An admission waiting for its batch to leave. */
interface Waiting extends BucketCall {
  subject: Subject;
  tokens: number;
  started: number;
  resolve(decision: Decision): void;
}

interface PendingRefund {
  subject: Subject;
  tokens: number;
  sinceMs: number;
}

export interface LimiterOptions {
  config: LimitsConfig;
  /** null: no Redis at all; every decision is local */
  redis: RedisClient | null;
  keyPrefix: string;
  metrics: LimiterMetrics;
  log?: Logger;
}

export class Limiter {
  readonly policies: Policies;
  private readonly config: LimitsConfig;
  private readonly redis: RedisClient | null;
  private readonly metrics: LimiterMetrics;
  private readonly log: Logger | undefined;
  private readonly local: LocalBuckets;
  private readonly pending = new Map<string, PendingRefund>();
  private readonly timer: Repeating;
  // The mode follows the connection as well as the commands, so that it (and the outage alert on
  // it) tells the truth while no request comes.
  private readonly onReady = () => {
    this.skipUntilMs = 0;
    this.enterMode('redis');
  };
  private readonly onClose = () => {
    this.enterMode(this.config.outage.policy);
  };
  private readonly counters = new Map<string, { inc(n?: number): void }>();
  private readonly timers: Record<DecisionSource, { observe(v: number): void }>;
  private readonly refunded: Record<Reservation['source'], { inc(n: number): void }>;
  /** Admissions waiting for their batch, by hash tag on Cluster (one batch elsewhere). */
  private readonly batches = new Map<string, Waiting[]>();
  private batchScheduled = false;
  private readonly cluster: boolean;
  private skipUntilMs = 0;
  private lastSweepMs = 0;
  private currentMode: LimiterMode;

  constructor(options: LimiterOptions) {
    const { config, redis } = options;
    this.config = config;
    this.redis = redis;
    this.metrics = options.metrics;
    this.log = options.log;
    const globalOn = config.global.requests.perMinute > 0 || config.global.tokens.perMinute > 0;
    const slices = redis instanceof Cluster && globalOn ? config.global.clusterSlices : 0;
    this.policies = new Policies(config, new KeySpace(options.keyPrefix, slices));
    this.local = new LocalBuckets(config.outage.replicas);
    this.cluster = redis instanceof Cluster;
    if (redis) {
      defineBucketScript(redis);
      redis.on('ready', this.onReady);
      redis.on('close', this.onClose);
    }
    this.timers = {
      redis: this.metrics.duration.labels({ source: 'redis' }),
      local: this.metrics.duration.labels({ source: 'local' }),
      none: this.metrics.duration.labels({ source: 'none' }),
    };
    this.refunded = {
      redis: this.metrics.refundedTokens.labels({ source: 'redis' }),
      local: this.metrics.refundedTokens.labels({ source: 'local' }),
    };
    const buckets: BucketName[] = ['requests', 'tokens'];
    if (this.policies.global.requests) buckets.push('global-requests');
    if (this.policies.global.tokens) buckets.push('global-tokens');
    makeDecisionSeries(this.metrics, Object.keys(config.tiers), buckets);
    this.currentMode = !redis ? 'local' : CONNECTION_DOWN.has(redis.status) ? config.outage.policy : 'redis';
    setMode(this.metrics, this.currentMode);
    this.timer = repeat(config.refundFlushMs, () => this.tick());
  }

  get mode(): LimiterMode {
    return this.currentMode;
  }

  /** Refunds waiting for their tenant's next call (for tests and the shutdown flush). */
  get pendingRefunds(): number {
    let sum = 0;
    for (const p of this.pending.values()) sum += p.tokens;
    return sum;
  }

  /**
   * One request: takes a request token and `cost` LLM tokens from the subject's buckets (and the
   * global ones), all or nothing. Never throws: a refusal is a Decision too.
   */
  async admit(subject: Subject, cost: TokenCost = NO_TOKENS): Promise<Decision> {
    const started = performance.now();
    const tokens = cost.promptTokens + cost.maxTokens;
    const tooLarge = this.tooLarge(subject, tokens);
    if (tooLarge) return tooLarge;
    const take: Take = { requests: 1, tokens, refund: 0 };
    if (this.redis && this.redisUsable(started)) {
      take.refund = this.takePending(subject.id);
      return new Promise((resolve) => this.enqueue({ specs: subject.specs, take, subject, tokens, started, resolve }));
    }
    return this.outage(subject, take, started);
  }

  private enqueue(w: Waiting): void {
    const tag = this.cluster ? hashTag(w.specs[0]!.key) : '';
    let batch = this.batches.get(tag);
    if (!batch) {
      batch = [];
      this.batches.set(tag, batch);
    }
    batch.push(w);
    if (batch.length >= this.config.batch.maxSize || !this.config.batch.enabled) {
      this.batches.delete(tag);
      this.send(batch);
      return;
    }
    if (this.batchScheduled) return;
    this.batchScheduled = true;
    const windowUs = this.config.batch.windowUs;
    // setImmediate runs after the I/O callbacks of this turn: every request parsed in it is in.
    if (windowUs === 0) setImmediate(this.sendAll);
    else setTimeout(this.sendAll, windowUs / 1000);
  }

  private readonly sendAll = (): void => {
    this.batchScheduled = false;
    const batches = [...this.batches.values()];
    this.batches.clear();
    for (const batch of batches) this.send(batch);
  };

  /** One script call for the batch; each request gets its decision, or the outage policy's when the call fails. */
  private send(batch: Waiting[]): void {
    this.metrics.batchSize.observe(batch.length);
    takeBatch(this.redis!, batch).then(
      (reply) => {
        this.enterMode('redis');
        let base = FIRST_CALL;
        for (const w of batch) {
          w.resolve(this.decide(w.subject, reply, 'redis', w.tokens, w.started, base));
          base += 1 + 3 * w.specs.length;
        }
      },
      (err: unknown) => {
        this.redisFailed(err);
        // The refunds it carried are dropped: the command may have run (see the top of this file).
        for (const w of batch) w.resolve(this.outage(w.subject, { ...w.take, refund: 0 }, w.started));
      },
    );
  }

  /** Gives back the part of a reservation the answer did not use (`used` = prompt + completion tokens). */
  settle(reservation: Reservation | null | undefined, used: number): void {
    if (!reservation || reservation.settled) return;
    reservation.settled = true;
    const spent = Number.isFinite(used) ? Math.max(0, Math.floor(used)) : reservation.tokens;
    const refund = Math.max(0, reservation.tokens - spent);
    if (refund === 0) return;
    this.refunded[reservation.source].inc(refund);
    const subject = reservation.subject;
    if (reservation.source === 'local') {
      this.local.take(subject.specs, { requests: 0, tokens: 0, refund });
      return;
    }
    const entry = this.pending.get(subject.id);
    if (entry) entry.tokens += refund;
    else this.pending.set(subject.id, { subject, tokens: refund, sinceMs: performance.now() });
  }

  /** Sends every pending refund now (at shutdown), stops the timer and lets go of the client. */
  async close(): Promise<void> {
    this.timer.stop();
    await this.flush(0);
    this.redis?.off('ready', this.onReady);
    this.redis?.off('close', this.onClose);
  }

  /** A cost no bucket could ever hold: `too_large`, without asking Redis. */
  private tooLarge(subject: Subject, tokens: number): Decision | null {
    for (const spec of subject.specs) {
      if (spec.unit !== 'tokens' || tokens <= spec.burst) continue;
      this.count(subject, spec.name, 'too_large', 'none');
      return { outcome: 'too_large', allowed: false, source: 'none', subject, tokens, buckets: [], limitedBy: spec.name, retryAfterMs: 0, capacity: spec.burst, reservation: null };
    }
    return null;
  }

  private decide(subject: Subject, reply: ScriptReply, source: 'redis' | 'local', tokens: number, started: number, base = FIRST_CALL): Decision {
    const allowed = replyAllowed(reply, base);
    const buckets: BucketState[] = [];
    let limitedBy: BucketName | null = null;
    let retryAfterMs = 0;
    const specs = subject.specs;
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i]!;
      const waitMs = replyWaitMs(reply, i, base);
      const limit = spec.name === 'requests' ? subject.requests : spec.name === 'tokens' ? subject.tokens : spec;
      buckets.push({ name: spec.name, limit, remaining: replyRemaining(reply, i, base), resetMs: replyResetMs(reply, i, base), waitMs });
      if (allowed) this.count(subject, spec.name, 'allowed', source);
      else if (waitMs > 0) {
        this.count(subject, spec.name, 'limited', source);
        if (waitMs > retryAfterMs) {
          retryAfterMs = waitMs;
          limitedBy = spec.name;
        }
      }
    }
    if (!allowed && limitedBy === null) {
      // Cannot happen with the script (a refusal means some bucket was short); kept safe anyway.
      limitedBy = 'requests';
      retryAfterMs = 1000;
    }
    this.timers[source].observe((performance.now() - started) / 1000);
    const reservation: Reservation | null = allowed && tokens > 0 ? { subject, tokens, source, settled: false } : null;
    return { outcome: allowed ? 'allowed' : 'limited', allowed, source, subject, tokens, buckets, limitedBy, retryAfterMs, capacity: null, reservation };
  }

  private outage(subject: Subject, take: Take, started: number): Decision {
    const policy = this.redis ? this.config.outage.policy : 'local';
    this.enterMode(policy);
    if (policy === 'local') return this.decide(subject, this.local.take(subject.specs, take), 'local', take.tokens, started);
    const outcome = policy === 'fail-open' ? 'fail_open' : 'fail_closed';
    for (const spec of subject.specs) this.count(subject, spec.name, outcome, 'none');
    this.timers.none.observe((performance.now() - started) / 1000);
    const allowed = policy === 'fail-open';
    return {
      outcome,
      allowed,
      source: 'none',
      subject,
      tokens: take.tokens,
      buckets: [],
      limitedBy: null,
      retryAfterMs: allowed ? 0 : this.config.outage.retryMs,
      capacity: null,
      reservation: null,
    };
  }

  private redisUsable(nowMs: number): boolean {
    return this.redis !== null && this.redis.status === 'ready' && nowMs >= this.skipUntilMs;
  }

  private redisFailed(err: unknown): void {
    this.metrics.redisErrors.inc({ kind: redisErrorKind(err) });
    this.skipUntilMs = performance.now() + this.config.outage.retryMs;
    if (this.currentMode === 'redis') this.log?.warn({ err: err instanceof Error ? err.message : String(err) }, 'rate limits: a Redis command failed');
  }

  private enterMode(mode: LimiterMode): void {
    if (mode === this.currentMode) return;
    if (mode === 'redis') {
      this.log?.info({}, 'rate limits: Redis answers again, shared buckets in use');
      this.local.clear();
    } else {
      this.log?.warn({ policy: mode }, 'rate limits: Redis unavailable, outage policy in force');
    }
    this.currentMode = mode;
    setMode(this.metrics, mode);
  }

  private takePending(subjectId: string): number {
    const entry = this.pending.get(subjectId);
    if (!entry) return 0;
    this.pending.delete(subjectId);
    return entry.tokens;
  }

  private tick(): void {
    const now = performance.now();
    if (now - this.lastSweepMs >= 1000) {
      this.local.sweep(now);
      this.lastSweepMs = now;
    }
    // A Redis that is down keeps its refunds waiting; a connection that reports ready is tried
    // even inside the retry pause, since the pause is for requests, not for background work.
    if (this.pending.size > 0 && this.redis?.status === 'ready') void this.flush(this.config.refundFlushMs);
  }

  /** Sends the refunds that have waited at least `minAgeMs`: one call for all of them (per hash tag on Cluster). */
  private async flush(minAgeMs: number): Promise<void> {
    const redis = this.redis;
    if (!redis || redis.status !== 'ready') return;
    const now = performance.now();
    const byTag = new Map<string, BucketCall[]>();
    for (const [id, entry] of this.pending) {
      if (now - entry.sinceMs < minAgeMs) continue;
      this.pending.delete(id);
      const tag = this.cluster ? hashTag(entry.subject.specs[0]!.key) : '';
      let calls = byTag.get(tag);
      if (!calls) byTag.set(tag, (calls = []));
      calls.push({ specs: entry.subject.specs, take: { requests: 0, tokens: 0, refund: entry.tokens } });
    }
    await Promise.all(
      [...byTag.values()].map((calls) =>
        takeBatch(redis, calls).then(
          () => this.enterMode('redis'),
          (err: unknown) => this.redisFailed(err),
        ),
      ),
    );
  }

  /** Counter children are looked up once per label set, not per request. */
  private count<O extends DecisionOutcome>(subject: Subject, bucket: BucketName, outcome: O, source: SourceOf<O>): void {
    const { tier } = subject;
    const key = `${tier}|${bucket}|${outcome}|${source}`;
    let child = this.counters.get(key);
    if (!child) {
      child = this.metrics.decisions.labels({ bucket, outcome, source, tier });
      this.counters.set(key, child);
    }
    child.inc();
  }
}

/** The hash tag of a key (what Cluster hashes): the text in its first `{...}`. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  const close = open < 0 ? -1 : key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}
