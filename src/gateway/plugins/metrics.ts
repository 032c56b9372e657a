/**
 * The gateway's metrics, on a Registry of its own, and the plugin that decorates them as
 * `app.metrics` and counts every HTTP answer. Label children that every request touches are
 * looked up once and kept (`httpChild`), so the hot path does no label hashing. Series whose
 * label values are known are made at zero at start (src/shared/metrics.ts says why), the routes'
 * as each route is added.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Counter, Histogram, Registry } from 'prom-client';
import { ERROR_STATUS } from '../../shared/errors.js';
import { LATENCY_BUCKETS, TOKEN_LATENCY_BUCKETS, counter, createRegistry, gauge, histogram } from '../../shared/metrics.js';
import { DEGRADE_MODES, DEGRADE_SOURCES } from '../config.js';
import { FALLBACK_REASONS } from '../fallback/knowledge-base.js';

/** opossum's events the breaker counts. */
export const BREAKER_EVENTS = ['success', 'failure', 'timeout', 'reject', 'open', 'halfOpen', 'close', 'semaphoreLocked', 'shutdown'] as const;
/** How one dispatch attempt on a worker ended. */
export const WORKER_ATTEMPT_RESULTS = ['ok', 'client_error', 'overloaded', 'failed', 'timeout', 'cancelled'] as const;
export type WorkerAttemptResult = (typeof WORKER_ATTEMPT_RESULTS)[number];
/** How an answer ended, for its end-to-end latency (a refused answer counts as failed). */
export const ANSWER_OUTCOMES = ['done', 'cancelled', 'failed', 'degraded'] as const;

/**
 * The statuses the gateway answers with: 200, and each status of the error table (every error
 * leaves through the one envelope of plugins/errors.ts). Each route's series are made at zero
 * for all of them, so that a 5xx ratio has its numerator before the first 5xx.
 */
export const HTTP_STATUSES: readonly number[] = [200, ...new Set(Object.values(ERROR_STATUS))].sort((a, b) => a - b);
/** The route label of a request no route matched (the not-found handler's 404). */
export const UNMATCHED_ROUTE = 'unmatched';

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

export function createGatewayMetrics(registry: Registry = createRegistry('gateway')) {
  const httpRequests = counter(registry, {
    name: 'gateway_http_requests_total',
    help: 'HTTP requests answered, by route, method and status',
    labels: { route: [], method: [], status: [] },
  });
  const httpDuration = histogram(registry, {
    name: 'gateway_http_request_duration_seconds',
    help: 'Time from request to the end of the response, by route',
    labels: { route: [] },
    buckets: LATENCY_BUCKETS,
  });
  const ttft = histogram(registry, {
    name: 'gateway_time_to_first_token_seconds',
    help: 'Time from the request to the first generated token (worker answers only)',
    buckets: LATENCY_BUCKETS,
  });
  const interToken = histogram(registry, {
    name: 'gateway_inter_token_latency_seconds',
    help: 'Time between consecutive token events of one answer',
    buckets: TOKEN_LATENCY_BUCKETS,
  });
  const e2e = histogram(registry, {
    name: 'gateway_e2e_request_latency_seconds',
    help: 'Time from the request to the last token of the answer, by outcome',
    labels: { outcome: ANSWER_OUTCOMES },
    buckets: LATENCY_BUCKETS,
  });
  const promptTokens = counter(registry, { name: 'gateway_prompt_tokens_total', help: 'Prompt tokens of worker answers' });
  const completionTokens = counter(registry, { name: 'gateway_completion_tokens_total', help: 'Completion tokens of worker answers' });
  const inFlight = gauge(registry, { name: 'gateway_requests_in_flight', help: 'Answers (worker or fallback) being produced right now' });
  const breakerState = gauge(registry, { name: 'gateway_breaker_state', help: 'Circuit breaker state: 0 closed, 1 half-open, 2 open' });
  const breakerEvents = counter(registry, {
    name: 'gateway_breaker_events_total',
    help: 'Circuit breaker events (success, failure, timeout, reject, open, halfOpen, close, ...)',
    labels: { event: BREAKER_EVENTS },
  });
  const degradeMode = gauge(registry, {
    name: 'gateway_degrade_mode',
    help: 'Degrade switch: 1 for the mode and source in force, 0 for the others',
    labels: { mode: DEGRADE_MODES, source: DEGRADE_SOURCES },
  });
  let storeUp: () => boolean = () => false;
  gauge(registry, {
    name: 'gateway_degrade_store_up',
    help: '1 when the degrade flag is shared through Redis, 0 when the gateway runs on its in-process copy',
    collect() {
      this.set(storeUp() ? 1 : 0);
    },
  });
  const fallbackAnswers = counter(registry, {
    name: 'gateway_fallback_answers_total',
    help: 'Answers given by the fallback, by source and reason',
    labels: { source: DEGRADE_SOURCES, reason: FALLBACK_REASONS },
  });
  const knowledgeBaseSearches = counter(registry, {
    name: 'gateway_knowledge_base_searches_total',
    help: 'Knowledge base look-ups by the fallback: answered from the per-question cache (hit) or searched (miss)',
    labels: { cache: ['hit', 'miss'] },
  });
  // Bound once: a look-up is on the degraded hot path.
  const knowledgeBaseHit = knowledgeBaseSearches.labels('hit');
  const knowledgeBaseMiss = knowledgeBaseSearches.labels('miss');
  let knowledgeProbe: () => { entries: number; shared: boolean } = () => ({ entries: 0, shared: false });
  gauge(registry, {
    name: 'gateway_knowledge_entries',
    help: 'Entries in the knowledge base: the file, plus live additions, less deletions',
    collect() {
      this.set(knowledgeProbe().entries);
    },
  });
  gauge(registry, {
    name: 'gateway_knowledge_store_up',
    help: '1 when knowledge changes are shared through Redis, 0 when they apply to this process only',
    collect() {
      this.set(knowledgeProbe().shared ? 1 : 0);
    },
  });
  const knowledgeAugmentations = counter(registry, {
    name: 'gateway_knowledge_augmentations_total',
    help: 'Chat requests that asked for knowledge, by whether entries went into the prompt (added) or none matched (no_match)',
    labels: { result: ['added', 'no_match'] },
  });
  const knowledgeAdded = knowledgeAugmentations.labels('added');
  const knowledgeNoMatch = knowledgeAugmentations.labels('no_match');
  const workerHealthy = gauge(registry, {
    name: 'gateway_worker_healthy',
    help: '1 when the worker passed its last health check',
    labels: { worker: [] },
  });
  // Read from the pool at scrape time: setting a labelled gauge twice per request costs more
  // than the rest of the pool's bookkeeping.
  let outstanding: () => Iterable<{ url: string; outstanding: number }> = () => [];
  gauge(registry, {
    name: 'gateway_worker_outstanding_requests',
    help: 'Requests sent to the worker and not yet finished',
    labels: { worker: [] },
    collect() {
      this.reset();
      for (const t of outstanding()) this.labels(t.url).set(t.outstanding);
    },
  });
  const workerAttempts = counter(registry, {
    name: 'gateway_worker_attempts_total',
    help: 'Dispatch attempts on workers, by result (ok, client_error, overloaded, failed, timeout, cancelled)',
    labels: { result: WORKER_ATTEMPT_RESULTS },
  });
  // Bound once, and typed: a result outside the declared ones would be a series born at its first event.
  const attemptChildren = new Map(WORKER_ATTEMPT_RESULTS.map((r) => [r, workerAttempts.labels(r)]));
  const workerRestarts = counter(registry, {
    name: 'gateway_worker_restarts_total',
    help: 'Local worker processes restarted by the supervisor after they exited',
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

  /** Makes a route's series at zero: its duration, and its count for each status it may answer. */
  function knownRoute(route: string, method: string, statuses: readonly number[] = HTTP_STATUSES): void {
    httpDuration.zero({ route });
    for (const status of statuses) httpChild(route, method, status).count.inc(0);
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
    knownRoute,
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
    /** Where the knowledge base's size and store come from, read at scrape time. */
    setKnowledgeProbe(probe: () => { entries: number; shared: boolean }) {
      knowledgeProbe = probe;
    },
    /** Counts one chat request that asked for knowledge (KnowledgeAugmenter's `onAugment`). */
    knowledgeAugmented(added: boolean) {
      (added ? knowledgeAdded : knowledgeNoMatch).inc();
    },
    workerHealthy,
    /** Where the outstanding requests per worker come from, read at scrape time. */
    setOutstandingProbe(probe: () => Iterable<{ url: string; outstanding: number }>) {
      outstanding = probe;
    },
    workerAttempts,
    /** Counts one dispatch attempt by how it ended. */
    workerAttempt(result: WorkerAttemptResult) {
      attemptChildren.get(result)!.inc();
    },
    workerRestarts,
  };
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics;
  }
}

export interface MetricsPluginOptions {
  /** Metrics made by the caller (tests, benchmarks); absent: a new Registry. */
  metrics?: GatewayMetrics | undefined;
}

async function metricsPlugin(app: FastifyInstance, options: MetricsPluginOptions): Promise<void> {
  const metrics = options.metrics ?? createGatewayMetrics();
  app.decorate('metrics', metrics);
  // Routes are known as they are added: their series exist before their first request. HEAD
  // (Fastify's automatic twin of each GET) is left to appear when used, since it would double them
  // for a method monitors rarely send.
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') metrics.knownRoute(route.url, method);
  });
  for (const method of ['GET', 'POST']) metrics.knownRoute(UNMATCHED_ROUTE, method, [404]);
  // A callback hook, not an async one: an async hook costs a promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    const child = metrics.httpChild(request.routeOptions.url ?? UNMATCHED_ROUTE, request.method, reply.statusCode);
    child.count.inc();
    child.duration.observe(reply.elapsedTime / 1000);
    done();
  });
}

export default fp(metricsPlugin, { name: 'metrics', fastify: '5.x' });
