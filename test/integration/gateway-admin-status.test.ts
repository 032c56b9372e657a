/**
 * GET /admin/status (what the operator console shows) on a gateway with fake workers and a
 * private Redis: each figure moves with what the gateway did, the limiter's mode follows Redis,
 * and the OpenAPI page documents it beside /admin/knowledge (whose own tests are in
 * gateway-knowledge.test.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { admin, auth, build, until } from '../helpers/gateway.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';
import { AdminStatusSchema, type AdminStatus } from '../../src/gateway/routes/admin-status.js';

let a: FakeWorker;
let b: FakeWorker;
let redis: PrivateRedis;

before(async () => {
  [a, b, redis] = await Promise.all([startFakeWorker(), startFakeWorker(), startPrivateRedis()]);
});
after(async () => {
  await Promise.all([a.stop(), b.stop(), redis.stop()]);
});

const LOAD = { queue_length: 2, running_sequences: 5, kv_tokens_in_use: 1200, kv_tokens_capacity: 16384 };

async function status(g: FastifyInstance): Promise<AdminStatus> {
  const res = await g.inject({ method: 'GET', url: '/admin/status', headers: admin });
  assert.equal(res.statusCode, 200, res.body);
  return AdminStatusSchema.parse(res.json());
}

const chat = (g: FastifyInstance, extra: Record<string, unknown> = {}) =>
  g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: [{ role: 'user', content: '公司拖欠工资怎么办？' }], max_tokens: 9, ...extra } });

test('the status shows the workers with their load, the switch and who set it, the limiter, the last minute and the knowledge base', async (ctx) => {
  await a.script({ load: LOAD });
  ctx.after(() => a.script({ load: null }));
  const g = await build(ctx, {
    workers: { urls: [a.url, b.url] },
    redis: { url: redis.url, keyPrefix: `status-${process.pid}:` },
    limits: { tiers: { pro: { requests: { perMinute: 60, burst: 3 }, tokens: { perMinute: 100_000, burst: 100_000 } } } },
  }, { redis: undefined });

  assert.equal((await g.inject({ method: 'GET', url: '/admin/status' })).statusCode, 401, 'the token is needed');
  assert.equal((await g.inject({ method: 'GET', url: '/admin/status', headers: { authorization: 'Bearer wrong' } })).statusCode, 401);

  let s = await status(g);
  assert.equal(s.breaker, 'closed');
  assert.deepEqual(s.workers.map((w) => [w.url, w.healthy]), [[a.url, true], [b.url, true]]);
  const wa = s.workers[0]!;
  assert.deepEqual([wa.queue_length, wa.running_sequences, wa.kv_tokens_in_use, wa.kv_tokens_capacity], [2, 5, 1200, 16384]);
  assert.equal(s.workers[1]!.queue_length, null, 'a worker that does not report its load');
  assert.deepEqual(wa.adapters, ['law-lora']);
  assert.equal(wa.in_flight, 0);
  assert.equal(wa.breaker, 'closed');
  assert.deepEqual({ mode: s.degrade.mode, source: s.degrade.source, updated_by: s.degrade.updated_by, store: s.degrade.store }, { mode: 'auto', source: 'kb', updated_by: 'config', store: 'redis' });
  assert.deepEqual({ ...s.limiter, tiers: s.limiter.tiers.map((t) => t.name) }, {
    enabled: true,
    redis_connected: true,
    mode: 'redis',
    outage_policy: 'local',
    tiers: ['pro'],
    limited_last_minute: {},
  });
  assert.deepEqual(s.limiter.tiers[0], { name: 'pro', requests: { per_minute: 60, burst: 3 }, tokens: { per_minute: 100_000, burst: 100_000 } });
  assert.deepEqual(
    { ...s.last_minute, errors_by_code: { ...s.last_minute.errors_by_code } },
    { by_worker: {}, fallback_by_reason: {}, errors_by_code: { invalid_api_key: 2 } },
    'nothing answered yet; the two refused status calls above are errors',
  );
  assert.equal(s.knowledge_base.entries, 10);

  // Three answers from the workers, then the request bucket (burst 3) is empty: two 429s.
  for (let i = 0; i < 3; i++) assert.equal((await chat(g)).statusCode, 200);
  for (let i = 0; i < 2; i++) assert.equal((await chat(g)).statusCode, 429);
  s = await status(g);
  const answered = Object.values(s.last_minute.by_worker).reduce((x, y) => x + y, 0);
  assert.equal(answered, 3);
  assert.ok(Object.keys(s.last_minute.by_worker).every((u) => u === a.url || u === b.url));
  assert.deepEqual({ ...s.limiter.limited_last_minute }, { pro: 2 });
  assert.deepEqual({ ...s.last_minute.errors_by_code }, { invalid_api_key: 2, rate_limited: 2 });

  // A bad request and a bad admin call are errors too, by their code.
  await g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: [] } });
  await g.inject({ method: 'GET', url: '/admin/status', headers: { authorization: 'Bearer wrong' } });
  s = await status(g);
  assert.equal(s.last_minute.errors_by_code.invalid_request, 1);
  assert.equal(s.last_minute.errors_by_code.invalid_api_key, 3, 'the refused status calls');

  // Set from the console: who set it is shown, and fallback answers are counted by reason.
  const put = await g.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced', source: 'kb', updated_by: 'console' } });
  assert.equal(put.statusCode, 200);
  s = await status(g);
  assert.deepEqual([s.degrade.mode, s.degrade.updated_by], ['forced', 'console']);
  assert.ok(Date.now() - Date.parse(s.degrade.updated_at) < 5000);
});

test('fallbacks by reason, errors inside a stream, and the limiter in its outage mode while Redis is away', async (ctx) => {
  const g = await build(ctx, {
    workers: { urls: [a.url] },
    redis: { url: redis.url, keyPrefix: `status2-${process.pid}:` },
  }, { redis: undefined });
  await a.script({ mode: 'midstream_error' });
  ctx.after(() => a.script({ mode: 'ok' }));
  const streamed = await chat(g, { stream: true });
  assert.equal(streamed.statusCode, 200);
  assert.match(streamed.body, /"error"/);
  let s = await status(g);
  assert.equal(s.last_minute.by_worker[a.url], 1, 'the worker streamed it');
  assert.deepEqual(Object.keys(s.last_minute.errors_by_code), ['worker_error'], 'the SSE error chunk is counted');

  await a.script({ mode: 'fail' });
  const degraded = await chat(g);
  assert.equal(degraded.headers['x-degraded-reason'], 'worker_failed');
  s = await status(g);
  assert.deepEqual({ ...s.last_minute.fallback_by_reason }, { worker_failed: 1 });

  let stopped = true;
  await redis.stop();
  ctx.after(async () => {
    if (stopped) await redis.start();
  });
  await chat(g);
  assert.ok(await until(async () => (await status(g)).limiter.mode === 'local', 3000), 'the outage policy is in force');
  s = await status(g);
  assert.equal(s.limiter.redis_connected, false);
  assert.equal(s.degrade.store, 'memory');
  await redis.start();
  stopped = false;
  assert.ok(await until(async () => (await status(g)).limiter.redis_connected, 5000), 'connected again');
});

test('with limits off and no Redis the limiter says so', async (ctx) => {
  const g = await build(ctx, { workers: { urls: [a.url] }, limits: { enabled: false } });
  const s = await status(g);
  assert.deepEqual({ ...s.limiter, limited_last_minute: { ...s.limiter.limited_last_minute } }, {
    enabled: false,
    redis_connected: false,
    mode: null,
    outage_policy: 'local',
    tiers: [],
    limited_last_minute: {},
  });
  assert.equal(s.degrade.store, 'memory');
});

test('the OpenAPI page documents /admin/status and /admin/knowledge', async (ctx) => {
  const g = await build(ctx, { workers: { urls: [a.url] } });
  const doc = (await g.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, { get?: { responses?: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }> } }> };
  const statusDoc = doc.paths['/admin/status']?.get?.responses?.['200']?.content?.['application/json']?.schema;
  assert.ok(statusDoc?.properties, JSON.stringify(doc.paths['/admin/status']));
  for (const key of ['workers', 'degrade', 'limiter', 'last_minute', 'knowledge_base']) assert.ok(key in statusDoc.properties!, key);
  assert.ok(doc.paths['/admin/knowledge']?.get, 'the search route');
});
