/**
 * The gateway's metrics, on a Registry of its own. Label children that every request touches are
 * looked up once and kept (`httpChild`), so the hot path does no label hashing.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LATENCY_BUCKETS, TOKEN_LATENCY_BUCKETS, createRegistry } from '../../shared/metrics.js';
import { DEGRADE_MODES, DEGRADE_SOURCES } from '../config.js';

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

export function createGatewayMetrics(registry: Registry = createRegistry('gateway')) {
  const registers = [registry];
  const httpRequests = new Counter({
    name: 'gateway_http_requests_total',
    help: 'HTTP requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'Time from request to the end of the response, by route',
    labelNames: ['route'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const ttft = new Histogram({
    name: 'gateway_time_to_first_token_seconds',
    help: 'Time from the request to the first generated token (worker answers only)',
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const interToken = new Histogram({
    name: 'gateway_inter_token_latency_seconds',
    help: 'Time between consecutive token events of one answer',
    buckets: TOKEN_LATENCY_BUCKETS,
    registers,
  });
  const e2e = new Histogram({
    name: 'gateway_e2e_request_latency_seconds',
    help: 'Time from the request to the last token of the answer, by outcome',
    labelNames: ['outcome'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const promptTokens = new Counter({
    name: 'gateway_prompt_tokens_total',
    help: 'Prompt tokens of worker answers',
    registers,
  });
  const completionTokens = new Counter({
    name: 'gateway_completion_tokens_total',
    help: 'Completion tokens of worker answers',
    registers,
  });
  const inFlight = new Gauge({
    name: 'gateway_requests_in_flight',
    help: 'Answers (worker or fallback) being produced right now',
    registers,
  });
  const breakerState = new Gauge({
    name: 'gateway_breaker_state',
    help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
    registers,
  });
  const breakerEvents = new Counter({
    name: 'gateway_breaker_events_total',
    help: 'Circuit breaker events (success, failure, timeout, reject, open, halfOpen, close, ...)',
    labelNames: ['event'] as const,
    registers,
  });
  const degradeMode = new Gauge({
    name: 'gateway_degrade_mode',
    help: 'Degrade switch: 1 for the mode and source in force, 0 for the others',
    labelNames: ['mode', 'source'] as const,
    registers,
  });
  let storeUp: () => boolean = () => false;
  new Gauge({
    name: 'gateway_degrade_store_up',
    help: '1 when the degrade flag is shared through Redis, 0 when the gateway runs on its in-process copy',
    registers,
    collect() {
      this.set(storeUp() ? 1 : 0);
    },
  });
  const fallbackAnswers = new Counter({
    name: 'gateway_fallback_answers_total',
    help: 'Answers given by the fallback, by source and reason',
    labelNames: ['source', 'reason'] as const,
    registers,
  });
  const knowledgeBaseSearches = new Counter({
    name: 'gateway_knowledge_base_searches_total',
    help: 'Knowledge base look-ups by the fallback: answered from the per-question cache (hit) or searched (miss)',
    labelNames: ['cache'] as const,
    registers,
  });
  // Bound once: a look-up is on the degraded hot path. Both series start at 0, so a hit ratio exists from the first scrape.
  const knowledgeBaseHit = knowledgeBaseSearches.labels('hit');
  const knowledgeBaseMiss = knowledgeBaseSearches.labels('miss');
  knowledgeBaseHit.inc(0);
  knowledgeBaseMiss.inc(0);
  const workerHealthy = new Gauge({
    name: 'gateway_worker_healthy',
    help: '1 when the worker passed its last health check',
    labelNames: ['worker'] as const,
    registers,
  });
  // Read from the pool at scrape time: setting a labelled gauge twice per request costs more
  // than the rest of the pool's bookkeeping.
  let outstanding: () => Iterable<{ url: string; outstanding: number }> = () => [];
  new Gauge({
    name: 'gateway_worker_outstanding_requests',
    help: 'Requests sent to the worker and not yet finished',
    labelNames: ['worker'] as const,
    registers,
    collect() {
      this.reset();
      for (const t of outstanding()) this.labels(t.url).set(t.outstanding);
    },
  });
  const workerAttempts = new Counter({
    name: 'gateway_worker_attempts_total',
    help: 'Dispatch attempts on workers, by result (ok, client_error, overloaded, failed, timeout, cancelled)',
    labelNames: ['result'] as const,
    registers,
  });

  const workerRestarts = new Counter({
    name: 'gateway_worker_restarts_total',
    help: 'Local worker processes restarted by the supervisor after they exited',
    registers,
  });

  const httpChildren = new Map<string, { count: Counter.Internal; duration: Histogram.Internal<'route'> }>();

  /** The counter and histogram children of one route+method+status, made once. */
  function httpChild(route: string, method: string, status: number) {
    const key = `${route} ${method} ${status}`;
    let child = httpChildren.get(key);
    if (!child) {
      child = {
        count: httpRequests.labels(route, method, String(status)),
        duration: httpDuration.labels(route),
      };
      httpChildren.set(key, child);
    }
    return child;
  }

  function setDegrade(mode: string, source: string): void {
    for (const m of DEGRADE_MODES) {
      for (const s of DEGRADE_SOURCES) degradeMode.labels(m, s).set(m === mode && s === source ? 1 : 0);
    }
  }

  const e2eByOutcome = {
    done: e2e.labels('done'),
    cancelled: e2e.labels('cancelled'),
    failed: e2e.labels('failed'),
    degraded: e2e.labels('degraded'),
  };

  return {
    registry,
    httpChild,
    ttft,
    interToken,
    e2eByOutcome,
    promptTokens,
    completionTokens,
    inFlight,
    breakerState,
    breakerEvents,
    setDegrade,
    /** Where the degrade store's state comes from, read at scrape time. */
    setDegradeStoreProbe(probe: () => boolean) {
      storeUp = probe;
    },
    fallbackAnswers,
    /** Counts one knowledge base look-up (KnowledgeBase's `onSearch`). */
    knowledgeBaseSearch(cache: 'hit' | 'miss') {
      (cache === 'hit' ? knowledgeBaseHit : knowledgeBaseMiss).inc();
    },
    workerHealthy,
    /** Where the outstanding requests per worker come from, read at scrape time. */
    setOutstandingProbe(probe: () => Iterable<{ url: string; outstanding: number }>) {
      outstanding = probe;
    },
    workerAttempts,
    workerRestarts,
  };
}
