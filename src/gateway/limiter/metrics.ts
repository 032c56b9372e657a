/**
 * The limiter's metrics, on the gateway's own Registry.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FAST_BUCKETS } from '../../shared/metrics.js';
import type { OutagePolicy } from './config.js';

export type DecisionOutcome = 'allowed' | 'limited' | 'too_large' | 'fail_open' | 'fail_closed';
export type DecisionSource = 'redis' | 'local' | 'none';
export type LimiterMode = 'redis' | OutagePolicy;
export const LIMITER_MODES: readonly LimiterMode[] = ['redis', 'local', 'fail-open', 'fail-closed'];

export interface LimiterMetrics {
  decisions: Counter<'bucket' | 'outcome' | 'source'>;
  redisErrors: Counter<'kind'>;
  duration: Histogram<'source'>;
  mode: Gauge<'mode'>;
  refundedTokens: Counter<'source'>;
}

export function createLimiterMetrics(registry: Registry): LimiterMetrics {
  const registers = [registry];
  const metrics: LimiterMetrics = {
    decisions: new Counter({
      name: 'gateway_ratelimit_decisions_total',
      help: 'Rate-limit decisions by bucket and outcome: every bucket of an admitted request counts `allowed`; of a refused one, the buckets that were short count `limited`',
      labelNames: ['bucket', 'outcome', 'source'] as const,
      registers,
    }),
    redisErrors: new Counter({
      name: 'gateway_ratelimit_redis_errors_total',
      help: 'Failed limiter commands by kind (timeout, unavailable, script, other)',
      labelNames: ['kind'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'gateway_ratelimit_duration_seconds',
      help: 'Time spent deciding one request, by where the decision was made',
      labelNames: ['source'] as const,
      buckets: FAST_BUCKETS,
      registers,
    }),
    mode: new Gauge({
      name: 'gateway_ratelimit_mode',
      help: 'Where limits are decided now: 1 for the current mode (redis, or the outage policy in force), 0 for the others',
      labelNames: ['mode'] as const,
      registers,
    }),
    refundedTokens: new Counter({
      name: 'gateway_ratelimit_refunded_tokens_total',
      help: 'Reserved LLM tokens given back because the answer used fewer',
      labelNames: ['source'] as const,
      registers,
    }),
  };
  return metrics;
}

export function setMode(metrics: LimiterMetrics, mode: LimiterMode): void {
  for (const m of LIMITER_MODES) metrics.mode.set({ mode: m }, m === mode ? 1 : 0);
}
