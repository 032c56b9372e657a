import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../src/shared/errors.js';
import { refusalError } from '../../src/gateway/limiter/plugin.js';
import { createRedis, RedisConfigSchema } from '../../src/gateway/plugins/redis.js';
import { until } from '../helpers/gateway.js';
import { privateRedisForFile, testLimiter } from '../helpers/limiter.js';

const TIERS = {
  free: { requests: { perMinute: 1, burst: 8 }, tokens: { perMinute: 1, burst: 10_000 } },
  anonymous: { requests: { perMinute: 1, burst: 1 }, tokens: { perMinute: 1, burst: 1 } },
};

const fx = privateRedisForFile();

async function redisBack(): Promise<void> {
  await fx.server.start();
  assert.ok(await until(() => fx.redis.status === 'ready', 5000), 'the client reconnects');
}

test('local: a dead Redis is replaced at once by buckets of capacity ÷ replicas, and used again when it returns', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, outage: { policy: 'local', replicas: 4 }, refundFlushMs: 20 });
  ctx.after(() => t.limiter.close());
  const s = t.tenant('local');
  const first = await t.limiter.admit(s, { promptTokens: 10, maxTokens: 90 });
  assert.equal(first.source, 'redis');
  t.limiter.settle(first.reservation, 100); // nothing to refund
  await fx.server.stop();
  assert.ok(await until(() => fx.redis.status !== 'ready', 2000));

  const decisions = [];
  let slowest = 0;
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    decisions.push(await t.limiter.admit(s, { promptTokens: 1, maxTokens: 9 }));
    slowest = Math.max(slowest, performance.now() - t0);
  }
  assert.ok(slowest < 100, `no decision waits on the dead Redis (slowest ${slowest.toFixed(1)} ms)`);
  assert.ok(decisions.every((d) => d.source === 'local'));
  assert.equal(decisions.filter((d) => d.allowed).length, 2, 'burst 8 over 4 replicas');
  assert.equal(t.limiter.mode, 'local');
  assert.equal(await t.metric('gateway_ratelimit_mode', { mode: 'local' }), 1);
  assert.equal(await t.metric('gateway_ratelimit_mode', { mode: 'redis' }), 0);

  // A reservation made locally is refunded locally.
  const local = decisions.find((d) => d.allowed)!;
  t.limiter.settle(local.reservation, 0);
  assert.equal(await t.metric('gateway_ratelimit_refunded_tokens_total', { source: 'local' }), 10);

  const back = performance.now();
  await redisBack();
  let d = await t.limiter.admit(s);
  while (d.source !== 'redis' && performance.now() - back < 5000) {
    await new Promise((r) => setTimeout(r, 50));
    d = await t.limiter.admit(s);
  }
  assert.equal(d.source, 'redis', 'shared buckets are used again');
  assert.ok(performance.now() - back < 5000, 'within 5 s of Redis returning');
  assert.equal(await t.metric('gateway_ratelimit_mode', { mode: 'redis' }), 1);
});

test('the mode follows the connection while no request comes: the outage policy when Redis goes, redis when it is back', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, outage: { policy: 'fail-open' } });
  ctx.after(() => t.limiter.close());
  assert.equal(t.limiter.mode, 'redis');
  await fx.server.stop();
  assert.ok(await until(async () => (await t.metric('gateway_ratelimit_mode', { mode: 'fail-open' })) === 1, 2000), 'no request needed');
  assert.equal(await t.metric('gateway_ratelimit_mode', { mode: 'redis' }), 0);
  assert.equal(await t.metric('gateway_ratelimit_decisions_total'), 0, 'nothing was decided');
  await redisBack();
  assert.equal(t.limiter.mode, 'redis');
  assert.equal(await t.metric('gateway_ratelimit_mode', { mode: 'redis' }), 1);
  // A limiter made while the connection is down starts on its outage policy.
  await fx.server.stop();
  assert.ok(await until(() => fx.redis.status !== 'ready', 2000));
  const late = testLimiter(fx.redis, { tiers: TIERS, outage: { policy: 'fail-closed' } });
  ctx.after(() => late.limiter.close());
  // (between two reconnection attempts at once; during one, when it fails)
  assert.ok(await until(() => late.limiter.mode === 'fail-closed', 2000), late.limiter.mode);
  await redisBack();
  assert.equal(late.limiter.mode, 'redis');
});

test('a Redis that hangs costs one command timeout, then decisions are local until it answers', async (ctx) => {
  const client = createRedis(RedisConfigSchema.parse({ url: fx.server.url, commandTimeoutMs: 100 }), 'hanging')!;
  const pauser = createRedis(RedisConfigSchema.parse({ url: fx.server.url }), 'pauser')!;
  client.on('error', () => {});
  pauser.on('error', () => {});
  const t = testLimiter(client, { tiers: TIERS, outage: { policy: 'local', retryMs: 300 } });
  ctx.after(async () => {
    await t.limiter.close();
    client.disconnect();
    pauser.disconnect();
  });
  assert.ok(await until(() => client.status === 'ready' && pauser.status === 'ready', 2000));
  const s = t.tenant('hang');
  await pauser.call('CLIENT', 'PAUSE', '1000', 'ALL');
  const t0 = performance.now();
  const timedOut = await t.limiter.admit(s);
  const first = performance.now() - t0;
  assert.equal(timedOut.source, 'local');
  assert.ok(first >= 90 && first < 600, `the command timeout (100 ms), not the 1 s pause, bounds the wait: ${first.toFixed(1)} ms`);
  const t1 = performance.now();
  assert.equal((await t.limiter.admit(s)).source, 'local');
  assert.ok(performance.now() - t1 < 50, 'the next request does not ask Redis');
  assert.equal(await t.metric('gateway_ratelimit_redis_errors_total', { kind: 'timeout' }), 1);
  assert.ok(await until(async () => (await t.limiter.admit(s)).source === 'redis', 3000, 50), 'tried again after retryMs, used once it answers');
});

test('refunds for Redis reservations wait out the outage and are sent when it ends', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, outage: { policy: 'local' }, refundFlushMs: 20 });
  ctx.after(() => t.limiter.close());
  const s = t.tenant('waiting');
  const d = await t.limiter.admit(s, { promptTokens: 0, maxTokens: 500 });
  await fx.server.stop();
  assert.ok(await until(() => fx.redis.status !== 'ready', 2000));
  t.limiter.settle(d.reservation, 100);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(t.limiter.pendingRefunds, 400, 'kept while Redis is away');
  await redisBack();
  assert.ok(await until(() => t.limiter.pendingRefunds === 0, 2000), 'sent once it is back');
});

test('fail-open admits and counts; fail-closed answers 503 REDIS_UNAVAILABLE with Retry-After', async (ctx) => {
  const open = testLimiter(fx.redis, { tiers: TIERS, outage: { policy: 'fail-open' } });
  const closed = testLimiter(fx.redis, { tiers: TIERS, outage: { policy: 'fail-closed', retryMs: 2000 } });
  ctx.after(async () => {
    await redisBack();
    await open.limiter.close();
    await closed.limiter.close();
  });
  await fx.server.stop();
  assert.ok(await until(() => fx.redis.status !== 'ready', 2000));
  for (let i = 0; i < 20; i++) {
    const d = await open.limiter.admit(open.tenant('open'));
    assert.equal(d.allowed, true);
    assert.equal(d.source, 'none');
    assert.equal(d.reservation, null);
  }
  assert.equal(await open.metric('gateway_ratelimit_decisions_total', { bucket: 'requests', outcome: 'fail_open' }), 20);
  assert.equal(await open.metric('gateway_ratelimit_mode', { mode: 'fail-open' }), 1);

  // The refusal is data; the HTTP edge makes it a 503 with Retry-After.
  const refused = await closed.limiter.admit(closed.tenant('closed'));
  assert.equal(refused.outcome, 'fail_closed');
  assert.equal(refused.allowed, false);
  const err = refusalError(refused, { promptTokens: 0, maxTokens: 0 });
  assert.ok(err instanceof AppError);
  assert.equal(err.code, 'REDIS_UNAVAILABLE');
  assert.equal(err.status, 503);
  assert.equal(err.retryAfter, 2);
  assert.equal(await closed.metric('gateway_ratelimit_decisions_total', { outcome: 'fail_closed' }), 2);
  assert.equal(await closed.metric('gateway_ratelimit_mode', { mode: 'fail-closed' }), 1);
});

test('without Redis every decision is local', async (ctx) => {
  const t = testLimiter(null, { tiers: TIERS, outage: { policy: 'fail-closed' } });
  ctx.after(() => t.limiter.close());
  const s = t.tenant('alone');
  const results = [];
  for (let i = 0; i < 10; i++) results.push(await t.limiter.admit(s));
  assert.ok(results.every((d) => d.source === 'local'));
  assert.equal(results.filter((d) => d.allowed).length, 8);
  assert.equal(t.limiter.mode, 'local');
});
