import { test, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { admin, auth, testGateway, until } from '../helpers/gateway.js';

let worker: FakeWorker;
let app: FastifyInstance;

before(async () => {
  worker = await startFakeWorker();
});
// A fresh gateway per test: the breaker's rolling statistics must not carry over.
beforeEach(async () => {
  await worker.script({ mode: 'ok' });
  app = await testGateway({
    workers: { urls: [worker.url], maxAttempts: 1 },
    breaker: { volumeThreshold: 2, errorThresholdPercentage: 50, resetTimeoutMs: 400 },
  });
});
afterEach(async () => {
  await app.close();
});
after(async () => {
  await worker.stop();
});

async function ask(content = '试用期被辞退有赔偿吗？') {
  const res = await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: [{ role: 'user', content }] } });
  return { status: res.statusCode, body: res.json(), headers: res.headers };
}

async function breakerGauge(): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  return Number(/^gateway_breaker_state\{[^}]*\} (\d+)$/m.exec(text)![1]);
}

test('client errors never open the breaker', async () => {
  for (let i = 0; i < 6; i++) {
    const res = await ask('法'.repeat(2100));
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'context_length_exceeded');
  }
  assert.equal(app.breaker.state, 'closed');
});

test('closed → open → half-open → closed, with fallback answers in between', async () => {
  const healthy = await ask();
  assert.equal(healthy.status, 200);
  assert.equal(healthy.body.degraded, false);
  assert.equal(await breakerGauge(), 0);

  await worker.script({ mode: 'fail' });
  const failed = await ask();
  assert.equal(failed.status, 200, 'a failing worker gives a fallback answer');
  assert.equal(failed.body.degraded.reason, 'worker_failed');
  assert.equal(failed.body.degraded.source, 'kb');
  assert.equal(failed.body.degraded.entry_id, 'kb-9', 'the knowledge base answers the question it was asked');
  assert.equal(failed.headers['x-degraded'], 'kb');
  await ask();
  assert.equal(app.breaker.state, 'open');
  assert.equal(await breakerGauge(), 2);

  const before = (await worker.stats()).requests;
  const whileOpen = await ask();
  assert.equal(whileOpen.status, 200);
  assert.equal(whileOpen.body.degraded.reason, 'breaker_open');
  assert.equal((await worker.stats()).requests, before, 'an open breaker does not touch the worker');

  await worker.script({ mode: 'ok' });
  assert.ok(await until(() => app.breaker.state === 'half-open', 2000), 'half-open after resetTimeout');
  assert.equal(await breakerGauge(), 1);

  const trial = await ask();
  assert.equal(trial.status, 200);
  assert.equal(trial.body.degraded, false, 'the trial call reaches the worker');
  assert.equal(app.breaker.state, 'closed');
  assert.equal(await breakerGauge(), 0);

  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  for (const event of ['open', 'halfOpen', 'close', 'failure', 'reject']) {
    assert.match(text, new RegExp(`^gateway_breaker_events_total\\{event="${event}"[^}]*\\} [1-9]`, 'm'), event);
  }
  assert.match(text, /^gateway_fallback_answers_total\{source="kb",reason="breaker_open"[^}]*\} [1-9]/m);
});

test('with the fallback off, failing workers give 503 with Retry-After', async (ctx) => {
  const put = await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'off' } });
  assert.equal(put.statusCode, 200);
  assert.equal(put.json().store, 'memory');
  await worker.script({ mode: 'fail' });
  ctx.after(() => worker.script({ mode: 'ok' }));
  const res = await ask();
  assert.equal(res.status, 503);
  assert.equal(res.headers['retry-after'], '5');
  assert.equal(res.body.error.code, 'service_unavailable');
  await ask();
  assert.equal(app.breaker.state, 'open');
  const open = await ask();
  assert.equal(open.status, 503);
  assert.match(open.body.error.message, /breaker is open/);
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 200, 'the worker itself is healthy');
});
