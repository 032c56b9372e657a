/**
 * The limiter's metrics, on the gateway's own Registry. The decision counter's tiers come from
 * the configuration, so its series are made when the limiter is built (`makeDecisionSeries`):
 * every tier × bucket in force × the outcome and source pairs a decision can have.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FAST_BUCKETS, counter, gauge, histogram } from '../../shared/metrics.js';
import { REDIS_ERROR_KINDS } from '../plugins/redis.js';
import type { OutagePolicy } from './config.js';
import { BUCKET_NAMES, type BucketName } from './keys.js';

export const DECISION_OUTCOMES = ['allowed', 'limited', 'too_large', 'fail_open', 'fail_closed'] as const;
export type DecisionOutcome = (typeof DECISION_OUTCOMES)[number];
export const DECISION_SOURCES = ['redis', 'local', 'none'] as const;
export type DecisionSource = (typeof DECISION_SOURCES)[number];
/** Where each outcome is decided: buckets in Redis or in memory admit or refuse; the others are decided without buckets. */
export const OUTCOME_SOURCES = {
  allowed: ['redis', 'local'],
  limited: ['redis', 'local'],
  too_large: ['none'],
  fail_open: ['none'],
  fail_closed: ['none'],
} as const satisfies Record<DecisionOutcome, readonly DecisionSource[]>;
export type SourceOf<O extends DecisionOutcome> = (typeof OUTCOME_SOURCES)[O][number];
export type LimiterMode = 'redis' | OutagePolicy;
export const LIMITER_MODES: readonly LimiterMode[] = ['redis', 'local', 'fail-open', 'fail-closed'];

export interface LimiterMetrics {
  decisions: Counter<'bucket' | 'outcome' | 'source' | 'tier'>;
  redisErrors: Counter<'kind'>;
  duration: Histogram<'source'>;
  mode: Gauge<'mode'>;
  refundedTokens: Counter<'source'>;
  batchSize: Histogram;
}

export function createLimiterMetrics(registry: Registry): LimiterMetrics {
  return {
    decisions: counter(registry, {
      name: 'gateway_ratelimit_decisions_total',
      help: 'Rate-limit decisions by bucket, outcome, source and tenant tier: every bucket of an admitted request counts `allowed`; of a refused one, the buckets that were short count `limited`',
      // The tiers are the configuration's: makeDecisionSeries makes the series.
      labels: { bucket: BUCKET_NAMES, outcome: DECISION_OUTCOMES, source: DECISION_SOURCES, tier: [] },
    }),
    redisErrors: counter(registry, {
      name: 'gateway_ratelimit_redis_errors_total',
      help: 'Failed limiter commands by kind (timeout, unavailable, script, other)',
      labels: { kind: REDIS_ERROR_KINDS },
    }),
    duration: histogram(registry, {
      name: 'gateway_ratelimit_duration_seconds',
      help: 'Time spent deciding one request, by where the decision was made',
      labels: { source: DECISION_SOURCES },
      buckets: FAST_BUCKETS,
    }),
    mode: gauge(registry, {
      name: 'gateway_ratelimit_mode',
      help: 'Where limits are decided now: 1 for the current mode (redis, or the outage policy in force), 0 for the others',
      labels: { mode: LIMITER_MODES },
    }),
    batchSize: histogram(registry, {
      name: 'gateway_ratelimit_batch_size',
      help: 'Admissions sent to Redis in one script call',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    }),
    refundedTokens: counter(registry, {
      name: 'gateway_ratelimit_refunded_tokens_total',
      help: 'Reserved LLM tokens given back because the answer used fewer',
      labels: { source: ['redis', 'local'] },
    }),
  };
}

/** The decision series of every tier and bucket in force, at zero. */
export function makeDecisionSeries(metrics: LimiterMetrics, tiers: readonly string[], buckets: readonly BucketName[]): void {
  for (const tier of tiers) {
    for (const bucket of buckets) {
      for (const outcome of DECISION_OUTCOMES) {
        for (const source of OUTCOME_SOURCES[outcome]) metrics.decisions.inc({ bucket, outcome, source, tier }, 0);
      }
    }
  }
}

export function setMode(metrics: LimiterMetrics, mode: LimiterMode): void {
  for (const m of LIMITER_MODES) metrics.mode.set({ mode: m }, m === mode ? 1 : 0);
}
