/**
 * The limiter's metrics, on the gateway's own Registry.
 */
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { FAST_BUCKETS, counter, gauge, histogram } from '../../shared/metrics.js';
import { REDIS_ERROR_KINDS } from '../plugins/redis.js';
import type { OutagePolicy } from './config.js';
import { BUCKET_NAMES } from './keys.js';

export const DECISION_OUTCOMES = ['allowed', 'limited', 'too_large', 'fail_open', 'fail_closed'] as const;
export type DecisionOutcome = (typeof DECISION_OUTCOMES)[number];
export const DECISION_SOURCES = ['redis', 'local', 'none'] as const;
export type DecisionSource = (typeof DECISION_SOURCES)[number];
export type LimiterMode = 'redis' | OutagePolicy;
export const LIMITER_MODES: readonly LimiterMode[] = ['redis', 'local', 'fail-open', 'fail-closed'];

export interface LimiterMetrics {
  decisions: Counter<'bucket' | 'outcome' | 'source'>;
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
      help: 'Rate-limit decisions by bucket and outcome: every bucket of an admitted request counts `allowed`; of a refused one, the buckets that were short count `limited`',
      labels: { bucket: BUCKET_NAMES, outcome: DECISION_OUTCOMES, source: DECISION_SOURCES },
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

export function setMode(metrics: LimiterMetrics, mode: LimiterMode): void {
  for (const m of LIMITER_MODES) metrics.mode.set({ mode: m }, m === mode ? 1 : 0);
}
