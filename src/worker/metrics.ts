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

export function createWorkerMetrics(registry: Registry = createRegistry('worker')) {
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
  };
}
