/**
 * The worker's metrics, on a Registry of its own. Names follow vLLM's where dashboards expect them
 * (time to first token, queue time, running and waiting requests), prefixed `worker_`.
 * Tokens per second are counters (`rate()` in Prometheus) plus a gauge of the last step's rate.
 * Series whose label values are known are made at zero at start (src/shared/metrics.ts says why).
 */
import type { Registry } from 'prom-client';
import { FINISH_REASONS } from '../protocol/schemas.js';
import { FAST_BUCKETS, LATENCY_BUCKETS, counter, createRegistry, gauge, histogram } from '../shared/metrics.js';

const BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256];

/** How a generation ends: the protocol's finish reasons, or an `error` event. */
export const WORKER_FINISH_REASONS = [...FINISH_REASONS, 'error'] as const;
/**
 * The codes a worker refuses a generation with before it starts: Fastify's body errors, the
 * request's validation, the tokenizer and adapter look-up, the scheduler's limits, readiness,
 * and INTERNAL for a bug. test/unit/worker/metrics.test.ts reads the worker's sources and fails
 * when a code the request path can throw is missing here.
 */
export const WORKER_REJECT_CODES = [
  'INVALID_REQUEST',
  'INVALID_JSON',
  'CONTEXT_LENGTH_EXCEEDED',
  'MODEL_NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'OVERLOADED',
  'NOT_READY',
  'INTERNAL',
] as const;

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

/** The tier labels of the fairness metrics: the configured tiers, `none` (no tier sent) and `other` (a tier not configured). */
export function tierLabels(tierWeights: Readonly<Record<string, number>>): string[] {
  return [...Object.keys(tierWeights), 'none', 'other'];
}

export function createWorkerMetrics(registry: Registry = createRegistry('worker'), options: { tiers?: readonly string[] } = {}) {
  const tiers = options.tiers ?? [];
  return {
    registry,
    queueLength: gauge(registry, { name: 'worker_queue_length', help: 'Requests waiting to be scheduled' }),
    runningSequences: gauge(registry, { name: 'worker_running_sequences', help: 'Sequences in the running batch' }),
    kvTokensInUse: gauge(registry, { name: 'worker_kv_tokens_in_use', help: 'Tokens held in the KV cache' }),
    kvTokensReserved: gauge(registry, {
      name: 'worker_kv_tokens_reserved',
      help: 'KV-cache tokens reserved by running sequences (prompt + max_tokens)',
    }),
    // The limits beside the levels, so that alerts and dashboards can say "near full" without
    // knowing each worker's configuration.
    queueCapacity: gauge(registry, { name: 'worker_queue_capacity', help: 'Waiting requests the queue holds at most (scheduler.maxQueue)' }),
    kvTokensCapacity: gauge(registry, {
      name: 'worker_kv_tokens_capacity',
      help: 'KV-cache tokens running sequences may reserve at most (scheduler.maxKvTokens)',
    }),
    batchSize: histogram(registry, { name: 'worker_batch_size', help: 'Sequences per decode step', buckets: BATCH_BUCKETS }),
    stepSeconds: histogram(registry, {
      name: 'worker_step_duration_seconds',
      help: 'Duration of one decode step (model run and sampling)',
      buckets: [...FAST_BUCKETS, 0.5, 1, 2.5],
    }),
    prefillTokens: counter(registry, { name: 'worker_prefill_tokens_total', help: 'Prompt tokens prefilled' }),
    decodeTokens: counter(registry, { name: 'worker_decode_tokens_total', help: 'Tokens generated' }),
    prefillTokensPerSecond: gauge(registry, { name: 'worker_prefill_tokens_per_second', help: 'Prefill throughput of the last prefill run' }),
    decodeTokensPerSecond: gauge(registry, {
      name: 'worker_decode_tokens_per_second',
      help: 'Decode throughput of the last decode step (batch size / step time)',
    }),
    timeToFirstToken: histogram(registry, {
      name: 'worker_time_to_first_token_seconds',
      help: 'From arrival to the first generated token',
      buckets: LATENCY_BUCKETS,
    }),
    queueSeconds: histogram(registry, { name: 'worker_queue_time_seconds', help: 'From arrival to the start of prefill', buckets: LATENCY_BUCKETS }),
    requestSeconds: histogram(registry, { name: 'worker_request_duration_seconds', help: 'From arrival to the end of generation', buckets: LATENCY_BUCKETS }),
    requests: counter(registry, {
      name: 'worker_requests_total',
      help: 'Generations ended, by finish reason (stop, length, cancelled, error)',
      labels: { finish_reason: WORKER_FINISH_REASONS },
    }),
    rejected: counter(registry, {
      name: 'worker_rejected_requests_total',
      help: 'Requests refused before they started, by error code',
      labels: { code: WORKER_REJECT_CODES },
    }),
    executionProvider: gauge(registry, {
      name: 'worker_execution_provider_info',
      help: 'The execution provider in use (1) and the one configured',
      labels: { provider: [], requested: [] },
    }),
    prefixCacheLookups: counter(registry, { name: 'worker_prefix_cache_lookups_total', help: 'Prompts looked up in the prefix cache' }),
    prefixCacheHits: counter(registry, { name: 'worker_prefix_cache_hits_total', help: 'Prompts that found at least one block of their prefix in the prefix cache' }),
    prefixCacheCachedTokens: counter(registry, {
      name: 'worker_prefix_cache_cached_tokens_total',
      help: 'Prompt tokens taken from the prefix cache instead of being prefilled',
    }),
    prefixCacheEvictedBlocks: counter(registry, {
      name: 'worker_prefix_cache_evicted_blocks_total',
      help: 'Prefix-cache blocks evicted to stay within the memory budget',
    }),
    prefixCacheBlocks: gauge(registry, { name: 'worker_prefix_cache_blocks', help: 'Blocks held by the prefix cache' }),
    prefixCacheBytes: gauge(registry, { name: 'worker_prefix_cache_bytes', help: 'Memory held by the prefix cache' }),
    prefixCacheCapacityBytes: gauge(registry, { name: 'worker_prefix_cache_capacity_bytes', help: 'Memory the prefix cache may hold at most (prefixCache.maxMb)' }),
    // By tier, never by tenant: tenants are unbounded, tiers are the configured few (plus none, other).
    tierAdmitted: counter(registry, { name: 'worker_tier_admitted_requests_total', help: 'Requests admitted from the queue, by tier', labels: { tier: tiers } }),
    tierTokens: counter(registry, {
      name: 'worker_tier_tokens_total',
      help: 'Tokens served, by tier and kind (prompt, output): what fair admission shares out',
      labels: { tier: tiers, kind: ['prompt', 'output'] },
    }),
    tierQueueSeconds: histogram(registry, {
      name: 'worker_tier_queue_time_seconds',
      help: 'From arrival to the start of prefill, by tier',
      labels: { tier: tiers },
      buckets: LATENCY_BUCKETS,
    }),
  };
}
