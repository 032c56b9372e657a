import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { AnswerEnd } from '../../src/gateway/answer/pipeline.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import type { FakeScript } from '../helpers/fake-worker.js';
import { admin, auth, sseData, build, testGateway, until } from '../helpers/gateway.js';
import type { GatewayConfig } from '../../src/gateway/config.js';

let a: FakeWorker;
let b: FakeWorker;
let app: FastifyInstance | undefined;

before(async () => {
  [a, b] = await Promise.all([startFakeWorker(), startFakeWorker()]);
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  const reset: Partial<FakeScript> = { mode: 'ok', ttftMs: 0, tokenDelayMs: 0, ready: true, adapters: ['law-lora'], load: null };
  await Promise.all([a.script(reset), b.script(reset)]);
});
after(async () => {
  await Promise.all([a.stop(), b.stop()]);
});

type Over = Parameters<typeof testGateway>[0];
async function gateway(over: Over = {}, deps: Parameters<typeof testGateway>[1] = {}) {
  app = await testGateway({ ...over, workers: { urls: [a.url, b.url], ...(over?.workers as Partial<GatewayConfig['workers']>) } }, deps);
  return app;
}

function chat(g: FastifyInstance, extra: Record<string, unknown> = {}) {
  return g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: [{ role: 'user', content: '借钱不还怎么办？' }], ...extra } });
}

test('least outstanding requests first, among workers that serve the adapter', async () => {
  await a.script({ adapters: ['law-lora'], tokenDelayMs: 80 });
  await b.script({ adapters: [], tokenDelayMs: 80 });
  const g = await gateway();
  const [sa0, sb0] = await Promise.all([a.stats(), b.stats()]);
  const pending = [chat(g, { adapter: 'law-lora' }), chat(g, { adapter: 'law-lora' })];
  assert.ok(await until(async () => (await a.stats()).active === 2, 2000));
  pending.push(chat(g), chat(g));
  assert.ok(await until(async () => (await b.stats()).active === 2, 2000), 'both base-model requests go to the idle worker');
  const results = await Promise.all(pending);
  assert.ok(results.every((r) => r.statusCode === 200 && r.json().degraded === false));
  const [sa, sb] = await Promise.all([a.stats(), b.stats()]);
  assert.equal(sa.requests - sa0.requests, 2);
  assert.equal(sb.requests - sb0.requests, 2);
});

test('a worker that fails before the first token is retried on another one', async () => {
  for (const mode of ['fail', 'overloaded', 'error_event'] as const) {
    await a.script({ mode });
    const g = await gateway();
    const before = (await a.stats()).requests;
    for (let i = 0; i < 4; i++) {
      const res = await chat(g);
      assert.equal(res.statusCode, 200, mode);
      assert.equal(res.json().degraded, false, `${mode}: the second worker answers`);
    }
    assert.ok((await a.stats()).requests > before, `${mode}: the failing worker was tried`);
    await g.close();
    app = undefined;
  }
});

test('a failure after the first token is not retried: SSE gets an error event, JSON the fallback answer (a 502 with the fallback off)', async () => {
  await a.script({ mode: 'midstream_error' });
  await b.script({ mode: 'midstream_error' });
  const g = await gateway();
  const before = (await a.stats()).requests + (await b.stats()).requests;
  const s = await chat(g, { stream: true });
  assert.equal(s.statusCode, 200);
  const events = sseData(s.body);
  assert.deepEqual(events[0], { id: (events[0] as { id: string }).id, delta: '根据' });
  assert.equal((events.at(-1) as { error: { code: string } }).error.code, 'worker_error');
  assert.ok(!events.includes('[DONE]'));
  const j = await chat(g);
  assert.equal(j.statusCode, 200, 'nothing was sent yet: the fallback answers instead of a 5xx');
  assert.equal(j.headers['x-degraded'], 'kb');
  assert.equal(j.headers['x-degraded-reason'], 'worker_failed');
  assert.equal(j.json().degraded.reason, 'worker_failed');
  assert.notEqual(j.json().message.content, '根据', 'the partial worker text is not mixed into the fallback answer');
  const after = (await a.stats()).requests + (await b.stats()).requests;
  assert.equal(after - before, 2, 'one worker request per client request');
  const put = await g.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'off' } });
  assert.equal(put.statusCode, 200);
  const off = await chat(g);
  assert.equal(off.statusCode, 502);
  assert.equal(off.json().error.code, 'worker_error');
  await g.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'auto' } });
  await a.script({ mode: 'garbage' });
  await b.script({ mode: 'garbage' });
  const garbage = await chat(g, { stream: true });
  assert.equal((sseData(garbage.body).at(-1) as { error: { code: string } }).error.code, 'worker_error', 'a worker line that is not JSON ends the stream cleanly');
});

test('time to first token and total time are bounded; the worker request is cancelled', async () => {
  await a.script({ ttftMs: 3000 });
  await b.script({ ttftMs: 3000 });
  const g = await gateway({ workers: { ttftTimeoutMs: 150, maxAttempts: 2 } as GatewayConfig['workers'] });
  const c0 = (await a.stats()).cancelled + (await b.stats()).cancelled;
  const res = await chat(g);
  assert.equal(res.statusCode, 200);
  assert.equal(res.json().degraded.reason, 'timeout');
  assert.ok(await until(async () => (await a.stats()).cancelled + (await b.stats()).cancelled === c0 + 2, 2000), 'both attempts were cancelled on the workers');
  await g.close();

  await a.script({ ttftMs: 0, tokenDelayMs: 200 });
  await b.script({ ttftMs: 0, tokenDelayMs: 200 });
  const g2 = await gateway({ workers: { totalTimeoutMs: 500 } as GatewayConfig['workers'] });
  const s = await chat(g2, { stream: true });
  const events = sseData(s.body);
  assert.equal((events.at(-1) as { error: { code: string } }).error.code, 'worker_timeout');
  assert.ok(events.length >= 2 && events.length <= 5, `a few tokens, then the timeout: ${events.length}`);
});

test('the client going away cancels the generation on the worker, and the answer hook sees it', async () => {
  await a.script({ tokenDelayMs: 100, ready: false });
  await b.script({ tokenDelayMs: 100 });
  const ends: AnswerEnd[] = [];
  const g = await gateway({}, { answerHooks: [{ onAnswerEnd: (_ctx, end) => ends.push(end) }] });
  await g.listen({ host: '127.0.0.1', port: 0 });
  const port = (g.server.address() as { port: number }).port;
  const c0 = (await b.stats()).cancelled;
  await new Promise<void>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/chat', headers: { ...auth, 'content-type': 'application/json' } }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => {});
    req.on('close', () => resolve());
    req.end(JSON.stringify({ messages: [{ role: 'user', content: '借钱不还怎么办？' }], stream: true }));
    setTimeout(() => reject(new Error('no first chunk')), 3000).unref();
  });
  assert.ok(await until(async () => (await b.stats()).cancelled === c0 + 1, 2000), 'the worker saw the cancellation');
  assert.ok(await until(() => ends.length === 1, 2000));
  assert.equal(ends[0]!.outcome, 'cancelled');
  assert.ok(ends[0]!.usage.completion_tokens >= 1 && ends[0]!.usage.completion_tokens < 9, `usage counted so far: ${ends[0]!.usage.completion_tokens}`);
  assert.equal((await b.stats()).active, 0);
});

test('health checks take unready and dead workers out and bring them back', async () => {
  await a.script({ ready: false });
  await b.script({ ready: false });
  const g = await gateway();
  assert.equal(g.pool.healthyCount(), 0);
  const res = await chat(g);
  assert.equal(res.json().degraded.reason, 'no_healthy_worker');
  const ready = await g.inject({ method: 'GET', url: '/readyz' });
  assert.equal(ready.statusCode, 200, 'ready: the fallback can answer');
  assert.equal(ready.json().healthy_workers, 0);
  await g.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'off' } });
  assert.equal((await g.inject({ method: 'GET', url: '/readyz' })).statusCode, 503, 'not ready: no worker and no fallback');
  await g.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'auto' } });

  await b.script({ ready: true });
  assert.ok(await until(() => g.pool.healthyCount() === 1, 2000));
  const workers = (await g.inject({ method: 'GET', url: '/admin/workers', headers: admin })).json();
  assert.deepEqual(
    workers.workers.map((w: { url: string; healthy: boolean }) => [w.url, w.healthy]),
    [
      [a.url, false],
      [b.url, true],
    ],
  );
  assert.equal(workers.breaker, 'closed');
  assert.equal((await chat(g)).json().degraded, false);
});

test("the pool keeps each worker's load from /readyz; a load that is not valid fails the check", async () => {
  const load = { queue_length: 3, running_sequences: 2, kv_tokens_in_use: 700, kv_tokens_capacity: 4096 };
  await a.script({ load });
  const g = await gateway();
  const byUrl = async () => {
    const res = await g.inject({ method: 'GET', url: '/admin/workers', headers: admin });
    return new Map((res.json().workers as Array<{ url: string; load: unknown; healthy: boolean; last_error: string | null }>).map((w) => [w.url, w]));
  };
  let workers = await byUrl();
  assert.deepEqual(workers.get(a.url)!.load, load);
  assert.equal(workers.get(b.url)!.load, null, 'a worker that does not report its load');
  await a.script({ load: { ...load, running_sequences: 0 } });
  assert.ok(await until(async () => ((await byUrl()).get(a.url)!.load as typeof load).running_sequences === 0, 2000), 'kept fresh from every check');

  for (const bad of [{ ...load, queue_length: -1 }, { ...load, kv_tokens_in_use: 'many' }, 'busy', { queue_length: 1 }]) {
    await a.script({ load: bad });
    assert.ok(await until(() => !g.pool.snapshot().find((w) => w.url === a.url)!.healthy, 2000), JSON.stringify(bad));
    workers = await byUrl();
    assert.equal(workers.get(a.url)!.last_error, 'readyz answer is not valid');
    await a.script({ load });
    assert.ok(await until(() => g.pool.healthyCount() === 2, 2000));
  }
  await a.script({ load: null });
});

test('a crashed worker is taken out at once and the request goes to another', async (ctx) => {
  const doomed = await startFakeWorker({ mode: 'crash' });
  ctx.after(() => doomed.stop());
  app = await testGateway({ workers: { urls: [doomed.url, b.url], healthIntervalMs: 60000 } as GatewayConfig['workers'] });
  await a.script({});
  for (let i = 0; i < 3; i++) {
    const res = await chat(app);
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().degraded, false);
  }
  assert.equal(app.pool.healthyCount(), 1);
});

test('workers found through a DNS name', async () => {
  app = await testGateway({ workers: { dns: `localhost:${b.port}`, resolveIntervalMs: 200 } as GatewayConfig['workers'] });
  assert.ok(app.pool.size >= 1);
  assert.ok(app.pool.healthyCount() >= 1, 'localhost resolves to the worker on loopback');
  const res = await chat(app);
  assert.equal(res.json().degraded, false);
});

test('closing lets open answers finish within drainTimeoutMs, then cuts them', async () => {
  await a.script({ tokenDelayMs: 400 });
  await b.script({ tokenDelayMs: 400 });
  const g = await gateway({ drainTimeoutMs: 300 });
  const pending = chat(g, { stream: true });
  assert.ok(await until(() => g.answerer.inProgress === 1, 2000));
  const t0 = performance.now();
  const closing = g.close();
  app = undefined;
  const late = await chat(g);
  assert.equal(late.statusCode, 503, 'a closing gateway takes no new requests');
  assert.equal(late.json().error.code, 'not_ready', 'in the API\'s own envelope');
  assert.equal(late.headers['retry-after'], '5');
  assert.equal(late.headers.connection, 'close');

  await closing;
  const elapsed = performance.now() - t0;
  const events = sseData((await pending).body);
  assert.equal((events.at(-1) as { error: { code: string } }).error.code, 'service_unavailable');
  assert.ok(events.length < 9, 'the stream was cut before its end');
  assert.ok(elapsed < 3000, `close took ${elapsed} ms`);
});

test('a worker that stops answering health checks is taken out after unhealthyThreshold of them, and comes back', async (ctx) => {
  const frozen = await startFakeWorker();
  ctx.after(async () => {
    frozen.child.kill('SIGCONT');
    await frozen.stop();
  });
  app = await testGateway({ workers: { urls: [frozen.url], healthIntervalMs: 100, healthTimeoutMs: 150, unhealthyThreshold: 3 } as GatewayConfig['workers'] });
  assert.equal(app.pool.healthyCount(), 1);
  frozen.child.kill('SIGSTOP');
  assert.ok(await until(() => app!.pool.snapshot()[0]!.last_error !== null, 3000), 'a check failed');
  assert.equal(app.pool.healthyCount(), 1, 'one unanswered check is not enough');
  assert.ok(await until(() => app!.pool.healthyCount() === 0, 5000), 'taken out after three');
  frozen.child.kill('SIGCONT');
  assert.ok(await until(() => app!.pool.healthyCount() === 1, 5000), 'back when it answers again');
});

test('a worker whose process is gone (connection refused) is taken out at the first check, whatever the threshold', async (ctx) => {
  const doomed = await startFakeWorker();
  ctx.after(() => doomed.stop());
  app = await testGateway({ workers: { urls: [doomed.url, b.url], healthIntervalMs: 100, unhealthyThreshold: 1000 } as GatewayConfig['workers'] });
  assert.equal(app.pool.healthyCount(), 2);
  await doomed.stop();
  const t0 = Date.now();
  assert.ok(await until(() => app!.pool.healthyCount() === 1, 3000), 'taken out');
  assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
  assert.match(app.pool.snapshot()[0]!.last_error!, /ECONNREFUSED/);
});

test('model names stay those the workers reported when the targets change; the configured name only before any report', async (ctx) => {
  const g = await gateway({ model: { name: 'configured-name' } });
  const ids = async () => ((await g.inject({ method: 'GET', url: '/v1/models', headers: auth })).json() as { data: Array<{ id: string }> }).data.map((m) => m.id);
  assert.ok(await until(async () => (await ids()).includes('law-lora'), 5000));
  const reported = await ids();
  assert.ok(!reported.includes('configured-name'), reported.join(','));
  // A local worker restarted on a new port: the target list changes and the new one has not reported yet.
  g.pool.setUrls(['http://127.0.0.1:1']);
  assert.deepEqual(await ids(), reported);
  await a.script({ mode: 'ok', ttftMs: 0, tokenDelayMs: 0, ready: true, adapters: ['law-lora'] });
  // A gateway that never saw a worker says the configured name.
  const fresh = await build(ctx, { model: { name: 'configured-name' }, workers: { urls: ['http://127.0.0.1:1'] } });
  assert.deepEqual(((await fresh.inject({ method: 'GET', url: '/v1/models', headers: auth })).json() as { data: Array<{ id: string }> }).data.map((m) => m.id), ['configured-name']);
});
