import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { admin, auth, sseData, build, testGateway, until } from '../helpers/gateway.js';
import { CLI_DIR } from '../helpers/paths.js';
import { startPrivateRedis } from '../helpers/redis.js';
import { freePort } from '../../src/shared/net.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let worker: FakeWorker;
let redis: Redis;

before(async () => {
  worker = await startFakeWorker();
  redis = new Redis(REDIS_URL);
});
after(async () => {
  redis.disconnect();
  await worker.stop();
});

let prefixes = 0;
const uniquePrefix = () => `test-degrade-${process.pid}-${++prefixes}:`;

function replica(keyPrefix: string, url = REDIS_URL, extra: Record<string, unknown> = {}) {
  return testGateway({ redis: { url, keyPrefix }, workers: { urls: [worker.url] }, degrade: { refreshMs: 300 }, ...extra }, { redis: undefined });
}

const question = { messages: [{ role: 'user', content: '公司拖欠工资三个月了怎么办？' }] };

test('a change on one replica reaches the others within one second (pub/sub, and polling when a message is missed)', async (ctx) => {
  const prefix = uniquePrefix();
  const [g1, g2] = await Promise.all([replica(prefix), replica(prefix)]);
  ctx.after(() => Promise.all([g1.close(), g2.close()]));
  assert.equal(g2.degrade.store, 'redis');
  const t0 = performance.now();
  const put = await g1.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced', source: 'kb' } });
  assert.equal(put.statusCode, 200);
  assert.equal(put.json().store, 'redis');
  assert.equal(put.json().updated_by, 'admin-api');
  assert.ok(await until(() => g2.degrade.state.mode === 'forced', 1000, 5), 'pub/sub reaches the other replica');
  const viaPubsub = performance.now() - t0;
  assert.equal(g2.degrade.state.updated_by, 'admin-api', 'who set it travels with it');
  assert.equal(JSON.parse((await redis.get(`${prefix}degrade`))!).updated_by, 'admin-api');

  // Written without a message: only the periodic re-read can find it.
  const t1 = performance.now();
  await redis.set(`${prefix}degrade`, JSON.stringify({ mode: 'off', source: 'canned', updated_at: new Date().toISOString() }));
  assert.ok(await until(() => g1.degrade.state.mode === 'off' && g2.degrade.state.mode === 'off', 1000, 5), 'the re-read finds it');
  const viaPoll = performance.now() - t1;
  assert.ok(viaPubsub < 1000 && viaPoll < 1000, `${viaPubsub} ms, ${viaPoll} ms`);

  const get = await g2.inject({ method: 'GET', url: '/admin/degrade', headers: admin });
  assert.deepEqual(
    { ...(get.json() as object), updated_at: 'x' },
    { mode: 'off', source: 'canned', updated_at: 'x', updated_by: null, store: 'redis' },
    'a value that does not say who set it',
  );
  const metrics = (await g2.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(metrics, /^gateway_degrade_mode\{mode="off",source="canned"[^}]*\} 1$/m);
  assert.match(metrics, /^gateway_degrade_mode\{mode="auto",source="kb"[^}]*\} 0$/m);

  // Garbage in the key is ignored, not applied.
  await redis.set(`${prefix}degrade`, '{"mode":"sideways"}');
  await redis.publish(`${prefix}degrade`, 'not json');
  await redis.publish(`${prefix}degrade`, JSON.stringify({ mode: 'forced', source: 'kb', updated_at: 'now', updated_by: '<script>' }));
  await redis.publish(`${prefix}degrade`, JSON.stringify({ mode: 'forced', source: 'kb', updated_at: 'now', updated_by: 'x'.repeat(65) }));
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(g2.degrade.state.mode, 'off');
});

test('forced answers from the knowledge base without touching a worker, JSON and SSE alike', async (ctx) => {
  const g = await build(ctx, { workers: { urls: [worker.url] }, degrade: { mode: 'forced' } });
  const before = (await worker.stats()).requests;
  const res = await g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: question });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-degraded'], 'kb');
  assert.equal(res.headers['x-degraded-reason'], 'forced');
  const body = res.json();
  assert.equal(body.degraded.source, 'kb');
  assert.equal(body.degraded.entry_id, 'kb-6');
  assert.equal(body.degraded.question, '公司已经三个月没发工资了，我该怎么维权？');
  assert.ok(body.degraded.score > 1);
  assert.match(body.message.content, /劳动争议仲裁委员会/);

  const s = await g.inject({ method: 'POST', url: '/v1/chat/completions', headers: auth, payload: { model: 'chatglm3-6b', ...question, stream: true, stream_options: { include_usage: true } } });
  assert.equal(s.statusCode, 200);
  assert.equal(s.headers['x-degraded'], 'kb');
  assert.match(String(s.headers['content-type']), /^text\/event-stream/);
  const chunks = sseData(s.body);
  assert.equal(chunks.at(-1), '[DONE]');
  const objs = chunks.slice(0, -1) as Array<{ object: string; choices: Array<{ delta: { content?: string; role?: string }; finish_reason: string | null }>; degraded?: { source: string } }>;
  assert.equal(objs[0]!.choices[0]!.delta.role, 'assistant');
  assert.match(objs[1]!.choices[0]!.delta.content!, /劳动争议仲裁委员会/);
  assert.equal(objs[2]!.choices[0]!.finish_reason, 'stop');
  assert.equal(objs[2]!.degraded!.source, 'kb');
  assert.deepEqual(objs[3]!.choices, []);
  assert.equal((await worker.stats()).requests, before, 'no worker was asked');

  await g.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced', source: 'canned' } });
  const canned = (await g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: question })).json();
  assert.deepEqual(canned.degraded, { source: 'canned', reason: 'forced' });
  assert.match(canned.message.content, /12348/);
});

test('a question the knowledge base does not know gets the canned answer with its best score', async (ctx) => {
  const g = await build(ctx, { degrade: { mode: 'forced' }, knowledgeBase: { minScore: 1000 } });
  const res = (await g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: question })).json();
  assert.equal(res.degraded.source, 'canned');
  assert.ok(res.degraded.best_score > 0 && res.degraded.best_score < 1000);
  assert.match(res.message.content, /没有与您的问题相近的解答/);
  const none = (await g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: [{ role: 'user', content: 'zzzz qqqq' }] } })).json();
  assert.deepEqual(none.degraded, { source: 'canned', reason: 'forced' });
});

test('without Redis the switch works in-process with a warning, and is shared once Redis is back', async () => {
  const own = await startPrivateRedis();
  const prefix = uniquePrefix();
  const g = await replica(prefix, own.url, { redis: { url: own.url, keyPrefix: prefix, connectTimeoutMs: 200 } });
  try {
    assert.equal(g.degrade.store, 'redis');
    await own.stop();
    assert.ok(await until(() => g.degrade.store === 'memory', 2000));
    const put = await g.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced' } });
    assert.equal(put.statusCode, 200);
    assert.equal(put.json().store, 'memory');
    assert.match(put.json().warning, /this replica only/);
    const res = await g.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: question });
    assert.equal(res.json().degraded.reason, 'forced', 'the change holds locally');
    assert.equal((await g.inject({ method: 'GET', url: '/metrics' })).body.match(/^gateway_degrade_store_up\{[^}]*\} (\d)/m)![1], '0');

    await own.start();
    const check = new Redis(own.url);
    try {
      assert.ok(
        await until(async () => JSON.parse((await check.get(`${prefix}degrade`)) ?? '{}').mode === 'forced', 5000, 100),
        'the change made while Redis was away is written when it returns',
      );
    } finally {
      check.disconnect();
    }
  } finally {
    await g.close();
    await own.stop();
  }
});

test('npm run degrade sets every replica through Redis and refuses bad input', async (ctx) => {
  const prefix = uniquePrefix();
  const g = await replica(prefix);
  const cli = join(CLI_DIR, 'degrade.js');
  const env = { ...process.env, GATEWAY_REDIS_URL: REDIS_URL, GATEWAY_REDIS_KEY_PREFIX: prefix };
  ctx.after(() => g.close());
  const ok = spawnSync(process.execPath, [cli, 'forced', 'canned'], { env, encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /mode forced, source canned/);
  assert.ok(await until(() => g.degrade.state.mode === 'forced' && g.degrade.state.source === 'canned', 1000, 5));
  assert.equal(g.degrade.state.updated_by, 'cli');
  const show = spawnSync(process.execPath, [cli], { env, encoding: 'utf8' });
  assert.match(show.stdout, /"mode":"forced"/);
  const bad = spawnSync(process.execPath, [cli, 'sometimes'], { env, encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /mode/);
  const dead = spawnSync(process.execPath, [cli, 'auto'], { env: { ...env, GATEWAY_REDIS_URL: `redis://127.0.0.1:${await freePort()}`, GATEWAY_REDIS_CONNECT_TIMEOUT_MS: '200' }, encoding: 'utf8' });
  assert.equal(dead.status, 1);
  assert.match(dead.stderr, /unreachable/);
  assert.equal(g.degrade.state.mode, 'forced');
});
