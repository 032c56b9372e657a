import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { admin, auth, testGateway } from '../helpers/gateway.js';
import { promtoolCheckMetrics } from '../helpers/promtool.js';
import { HTTP_STATUSES } from '../../src/gateway/plugins/metrics.js';

let worker: FakeWorker;
let app: FastifyInstance;

before(async () => {
  worker = await startFakeWorker({ tokenDelayMs: 2 });
  app = await testGateway({ workers: { urls: [worker.url] } });
});
after(async () => {
  await app.close();
  await worker.stop();
});

const payload = { messages: [{ role: 'user', content: '离婚时房产怎么分割？' }] };

/** The value of the one sample of `name` whose labels include `labels` (in any order). */
function value(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  assert.fail(`no sample ${name} ${JSON.stringify(labels)}`);
}

test('metrics cover requests, tokens, latencies, breaker, degrade, fallback and workers', async () => {
  await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload });
  await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { ...payload, stream: true } });
  await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: [] } });
  await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced', source: 'kb' } });
  await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload });
  await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'auto' } });

  const res = await app.inject({ method: 'GET', url: '/metrics' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const text = res.body;
  const route = { route: '/v1/chat', method: 'POST' };
  assert.equal(value(text, 'gateway_http_requests_total', { ...route, status: '200' }), 3, 'streamed answers are counted too');
  assert.equal(value(text, 'gateway_http_requests_total', { ...route, status: '400' }), 1);
  assert.equal(value(text, 'gateway_http_request_duration_seconds_count', { route: '/v1/chat' }), 4);
  assert.equal(value(text, 'gateway_time_to_first_token_seconds_count'), 2);
  assert.ok(value(text, 'gateway_inter_token_latency_seconds_count') >= 16);
  assert.equal(value(text, 'gateway_e2e_request_latency_seconds_count', { outcome: 'done' }), 2);
  assert.equal(value(text, 'gateway_e2e_request_latency_seconds_count', { outcome: 'degraded' }), 1);
  assert.equal(value(text, 'gateway_completion_tokens_total'), 18);
  assert.ok(value(text, 'gateway_prompt_tokens_total') > 0);
  assert.equal(value(text, 'gateway_requests_in_flight'), 0);
  assert.equal(value(text, 'gateway_breaker_state'), 0);
  assert.equal(value(text, 'gateway_breaker_events_total', { event: 'success' }), 2);
  assert.equal(value(text, 'gateway_fallback_answers_total', { source: 'kb', reason: 'forced' }), 1);
  assert.equal(value(text, 'gateway_knowledge_base_searches_total', { cache: 'miss' }), 1, 'the degraded answer searched the knowledge base');
  assert.equal(value(text, 'gateway_knowledge_base_searches_total', { cache: 'hit' }), 0);
  assert.equal(value(text, 'gateway_degrade_mode', { mode: 'auto', source: 'kb' }), 1);
  assert.equal(value(text, 'gateway_degrade_mode', { mode: 'forced', source: 'kb' }), 0);
  assert.equal(value(text, 'gateway_worker_healthy', { worker: worker.url }), 1);
  assert.equal(value(text, 'gateway_worker_outstanding_requests', { worker: worker.url }), 0);
  assert.equal(value(text, 'gateway_worker_attempts_total', { result: 'ok' }), 2, 'the two worker answers');
  assert.equal(value(text, 'process_cpu_seconds_total', { process: 'gateway' }) >= 0, true);
});

test('every route has its series at zero for each status the gateway answers with, before its first request', async (ctx) => {
  const fresh = await testGateway({ workers: { urls: [worker.url] } });
  ctx.after(() => fresh.close());
  const text = (await fresh.inject({ method: 'GET', url: '/metrics' })).body;
  assert.deepEqual([...HTTP_STATUSES].slice(0, 3), [200, 400, 401]);
  assert.ok(HTTP_STATUSES.includes(503) && HTTP_STATUSES.includes(429));
  const routes = [
    ['/v1/chat', 'POST'],
    ['/v1/chat/completions', 'POST'],
    ['/v1/completions', 'POST'],
    ['/v1/models', 'GET'],
    ['/admin/degrade', 'PUT'],
    ['/healthz', 'GET'],
  ];
  for (const [route, method] of routes) {
    for (const status of HTTP_STATUSES) {
      // The scrape itself is counted after its answer is written, so even /metrics shows 0 here.
      assert.equal(value(text, 'gateway_http_requests_total', { route: route!, method: method!, status: String(status) }), 0, `${method} ${route} ${status}`);
    }
    assert.equal(value(text, 'gateway_http_request_duration_seconds_count', { route: route! }), 0);
  }
  assert.equal(value(text, 'gateway_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 0);
  assert.doesNotMatch(text, /gateway_http_requests_total\{[^}]*method="HEAD"/, 'HEAD series appear when used');
  await fresh.inject({ method: 'GET', url: '/nowhere' });
  const after = (await fresh.inject({ method: 'GET', url: '/metrics' })).body;
  assert.equal(value(after, 'gateway_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 1);
});

test('promtool accepts the whole exposition, default metrics included, with no finding', async () => {
  await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload });
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.ok(text.includes('nodejs_active_handles'), 'the default metrics are exposed');
  assert.deepEqual(promtoolCheckMetrics(text), { status: 0, findings: '' });
});
