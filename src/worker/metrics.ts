/**
 * The worker's metrics, on a Registry of its own. Names follow vLLM's where dashboards expect them
 * (time to first token, queue time, running and waiting requests), prefixed `worker_`.
 * Tokens per second are counters (`rate()` in Prometheus) plus a gauge of the last step's rate.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FAST_BUCKETS, LATENCY_BUCKETS, createRegistry } from '../shared/metrics.js';

const BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256];

export class WorkerMetrics {
  readonly registry: Registry;
  readonly queueLength: Gauge;
  readonly runningSequences: Gauge;
  readonly kvTokensInUse: Gauge;
  readonly kvTokensReserved: Gauge;
  readonly queueCapacity: Gauge;
  readonly kvTokensCapacity: Gauge;
  readonly batchSize: Histogram;
  readonly stepSeconds: Histogram;
  readonly prefillTokens: Counter;
  readonly decodeTokens: Counter;
  readonly prefillTokensPerSecond: Gauge;
  readonly decodeTokensPerSecond: Gauge;
  readonly timeToFirstToken: Histogram;
  readonly queueSeconds: Histogram;
  readonly requestSeconds: Histogram;
  readonly requests: Counter<'finish_reason'>;
  readonly rejected: Counter<'code'>;
  readonly executionProvider: Gauge<'provider' | 'requested'>;
  readonly prefixCacheLookups: Counter;
  readonly prefixCacheHits: Counter;
  readonly prefixCacheCachedTokens: Counter;
  readonly prefixCacheEvictedBlocks: Counter;
  readonly prefixCacheBlocks: Gauge;
  readonly prefixCacheBytes: Gauge;
  readonly prefixCacheCapacityBytes: Gauge;
  readonly tierAdmitted: Counter<'tier'>;
  readonly tierTokens: Counter<'tier' | 'kind'>;
  readonly tierQueueSeconds: Histogram<'tier'>;

  constructor(registry: Registry = createRegistry('worker')) {
    this.registry = registry;
    const registers = [registry];
    this.queueLength = new Gauge({ name: 'worker_queue_length', help: 'Requests waiting to be scheduled', registers });
    this.runningSequences = new Gauge({ name: 'worker_running_sequences', help: 'Sequences in the running batch', registers });
    this.kvTokensInUse = new Gauge({ name: 'worker_kv_tokens_in_use', help: 'Tokens held in the KV cache', registers });
    this.kvTokensReserved = new Gauge({
      name: 'worker_kv_tokens_reserved',
      help: 'KV-cache tokens reserved by running sequences (prompt + max_tokens)',
      registers,
    });
    // The limits beside the levels, so that alerts and dashboards can say "near full" without
    // knowing each worker's configuration.
    this.queueCapacity = new Gauge({ name: 'worker_queue_capacity', help: 'Waiting requests the queue holds at most (scheduler.maxQueue)', registers });
    this.kvTokensCapacity = new Gauge({
      name: 'worker_kv_tokens_capacity',
      help: 'KV-cache tokens running sequences may reserve at most (scheduler.maxKvTokens)',
      registers,
    });
    this.batchSize = new Histogram({ name: 'worker_batch_size', help: 'Sequences per decode step', buckets: BATCH_BUCKETS, registers });
    this.stepSeconds = new Histogram({
      name: 'worker_step_duration_seconds',
      help: 'Duration of one decode step (model run and sampling)',
      buckets: [...FAST_BUCKETS, 0.5, 1, 2.5],
      registers,
    });
    this.prefillTokens = new Counter({ name: 'worker_prefill_tokens_total', help: 'Prompt tokens prefilled', registers });
    this.decodeTokens = new Counter({ name: 'worker_decode_tokens_total', help: 'Tokens generated', registers });
    this.prefillTokensPerSecond = new Gauge({
      name: 'worker_prefill_tokens_per_second',
      help: 'Prefill throughput of the last prefill run',
      registers,
    });
    this.decodeTokensPerSecond = new Gauge({
      name: 'worker_decode_tokens_per_second',
      help: 'Decode throughput of the last decode step (batch size / step time)',
      registers,
    });
    this.timeToFirstToken = new Histogram({
      name: 'worker_time_to_first_token_seconds',
      help: 'From arrival to the first generated token',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.queueSeconds = new Histogram({
      name: 'worker_queue_time_seconds',
      help: 'From arrival to the start of prefill',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.requestSeconds = new Histogram({
      name: 'worker_request_duration_seconds',
      help: 'From arrival to the end of generation',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.requests = new Counter({
      name: 'worker_requests_total',
      help: 'Generations ended, by finish reason (stop, length, cancelled, error)',
      labelNames: ['finish_reason'],
      registers,
    });
    this.rejected = new Counter({
      name: 'worker_rejected_requests_total',
      help: 'Requests refused before they started, by error code',
      labelNames: ['code'],
      registers,
    });
    this.executionProvider = new Gauge({
      name: 'worker_execution_provider_info',
      help: 'The execution provider in use (1) and the one configured',
      labelNames: ['provider', 'requested'],
      registers,
    });
    this.prefixCacheLookups = new Counter({ name: 'worker_prefix_cache_lookups_total', help: 'Prompts looked up in the prefix cache', registers });
    this.prefixCacheHits = new Counter({
      name: 'worker_prefix_cache_hits_total',
      help: 'Prompts that found at least one block of their prefix in the prefix cache',
      registers,
    });
    this.prefixCacheCachedTokens = new Counter({
      name: 'worker_prefix_cache_cached_tokens_total',
      help: 'Prompt tokens taken from the prefix cache instead of being prefilled',
      registers,
    });
    this.prefixCacheEvictedBlocks = new Counter({
      name: 'worker_prefix_cache_evicted_blocks_total',
      help: 'Prefix-cache blocks evicted to stay within the memory budget',
      registers,
    });
    this.prefixCacheBlocks = new Gauge({ name: 'worker_prefix_cache_blocks', help: 'Blocks held by the prefix cache', registers });
    this.prefixCacheBytes = new Gauge({ name: 'worker_prefix_cache_bytes', help: 'Memory held by the prefix cache', registers });
    this.prefixCacheCapacityBytes = new Gauge({
      name: 'worker_prefix_cache_capacity_bytes',
      help: 'Memory the prefix cache may hold at most (prefixCache.maxMb)',
      registers,
    });
    // By tier, never by tenant: tenants are unbounded, tiers are the configured few (plus none, other).
    this.tierAdmitted = new Counter({
      name: 'worker_tier_admitted_requests_total',
      help: 'Requests admitted from the queue, by tier',
      labelNames: ['tier'],
      registers,
    });
    this.tierTokens = new Counter({
      name: 'worker_tier_tokens_total',
      help: 'Tokens served, by tier and kind (prompt, output): what fair admission shares out',
      labelNames: ['tier', 'kind'],
      registers,
    });
    this.tierQueueSeconds = new Histogram({
      name: 'worker_tier_queue_time_seconds',
      help: 'From arrival to the start of prefill, by tier',
      labelNames: ['tier'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
  }
}
