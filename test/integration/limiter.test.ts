import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError } from '../../src/shared/errors.js';
import { refusalError } from '../../src/gateway/limiter/plugin.js';
import { until } from '../helpers/gateway.js';
import { commandStats, readBucket, privateRedisForFile, testLimiter } from '../helpers/limiter.js';

const TIERS = {
  free: { requests: { perMinute: 60, burst: 1000 }, tokens: { perMinute: 1, burst: 10_000 } },
  tiny: { requests: { perMinute: 1, burst: 3 }, tokens: { perMinute: 1, burst: 100 } },
  anonymous: { requests: { perMinute: 1, burst: 2 }, tokens: { perMinute: 1, burst: 50 } },
};

const fx = privateRedisForFile();

test('an admitted request costs one Redis command, refunds included', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, refundFlushMs: 10_000 });
  ctx.after(() => t.limiter.close());
  const subjects = [t.tenant('a'), t.tenant('b'), t.tenant('c')];
  await t.limiter.admit(subjects[0]!); // first use on the connection loads the script
  await fx.redis.config('RESETSTAT');
  let admitted = 0;
  for (let i = 0; i < 300; i++) {
    const d = await t.limiter.admit(subjects[i % 3]!, { promptTokens: 10, maxTokens: 20 });
    assert.equal(d.allowed, true);
    assert.equal(d.source, 'redis');
    admitted++;
    t.limiter.settle(d.reservation, 15);
  }
  const stats = await commandStats(fx.redis);
  assert.equal(stats.sent, admitted, 'one command per admission, the refunds rode along');
  assert.equal(stats.scripts, admitted);
  assert.equal(t.limiter.pendingRefunds, 3 * 15, 'the last refund of each tenant is still waiting');
});

test('refunds ride on the next admission, or go alone after refundFlushMs', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, refundFlushMs: 50 });
  ctx.after(() => t.limiter.close());
  const s = t.tenant('refunds');
  const first = await t.limiter.admit(s, { promptTokens: 100, maxTokens: 900 });
  assert.equal(first.buckets[1]!.remaining, 9_000);
  t.limiter.settle(first.reservation, 300); // 700 unused
  const second = await t.limiter.admit(s, { promptTokens: 0, maxTokens: 1000 });
  assert.equal(second.buckets[1]!.remaining, 9_000 + 700 - 1000, 'the refund was applied before the take');
  t.limiter.settle(second.reservation, 0);
  assert.equal(t.limiter.pendingRefunds, 1000);
  assert.ok(await until(() => t.limiter.pendingRefunds === 0, 1000), 'flushed by the timer');
  const look = await t.limiter.admit(s);
  assert.equal(look.buckets[1]!.remaining, 9_700);
  assert.equal(await t.metric('gateway_ratelimit_refunded_tokens_total', { source: 'redis' }), 1700);
});

test('settling twice, or with more than was reserved, refunds nothing extra', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, refundFlushMs: 10_000 });
  ctx.after(() => t.limiter.close());
  const s = t.tenant('settle');
  const d = await t.limiter.admit(s, { promptTokens: 10, maxTokens: 90 });
  t.limiter.settle(d.reservation, 40);
  t.limiter.settle(d.reservation, 0);
  assert.equal(t.limiter.pendingRefunds, 60);
  const e = await t.limiter.admit(s, { promptTokens: 10, maxTokens: 90 });
  t.limiter.settle(e.reservation, 1e9);
  const f = await t.limiter.admit(s, { promptTokens: 10, maxTokens: 90 });
  t.limiter.settle(f.reservation, Number.NaN);
  assert.equal(t.limiter.pendingRefunds, 0, 'over-use and unknown use are charged in full');
});

test('a cost above the burst is a 400 that never touches Redis', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS });
  ctx.after(() => t.limiter.close());
  await fx.redis.config('RESETSTAT');
  const cost = { promptTokens: 60, maxTokens: 41 };
  const d = await t.limiter.admit(t.tenant('big', 'tiny'), cost);
  assert.deepEqual([d.outcome, d.allowed, d.limitedBy, d.capacity, d.tokens], ['too_large', false, 'tokens', 100, 101]);
  // The refusal is data; the HTTP edge makes it a 400 naming the field.
  const err = refusalError(d, cost);
  assert.ok(err instanceof AppError);
  assert.equal(err.code, 'TOKEN_BUDGET_EXCEEDED');
  assert.equal(err.status, 400);
  assert.equal(err.param, 'max_tokens');
  assert.match(err.message, /needs 101 tokens \(60 in the prompt \+ max_tokens 41\).*holds at most 100/);
  assert.equal((await commandStats(fx.redis)).sent, 0);
  assert.equal((await fx.redis.keys(`${t.prefix}*`)).length, 0);
  assert.equal(await t.metric('gateway_ratelimit_decisions_total', { bucket: 'tokens', outcome: 'too_large' }), 1);
  // At exactly the burst it fits.
  assert.equal((await t.limiter.admit(t.tenant('big', 'tiny'), { promptTokens: 60, maxTokens: 40 })).allowed, true);
});

test('a refusal names the short bucket and when it will have room', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS });
  ctx.after(() => t.limiter.close());
  const s = t.tenant('short', 'tiny');
  for (let i = 0; i < 3; i++) assert.equal((await t.limiter.admit(s)).allowed, true);
  const d = await t.limiter.admit(s);
  assert.equal(d.allowed, false);
  assert.equal(d.limitedBy, 'requests');
  assert.ok(d.retryAfterMs > 59_000 && d.retryAfterMs <= 60_000, String(d.retryAfterMs));
  assert.equal(d.reservation, null);
  const s2 = t.tenant('short-tokens', 'tiny');
  assert.equal((await t.limiter.admit(s2, { promptTokens: 50, maxTokens: 30 })).allowed, true);
  const d2 = await t.limiter.admit(s2, { promptTokens: 10, maxTokens: 20 });
  assert.equal(d2.limitedBy, 'tokens');
  assert.equal(await t.metric('gateway_ratelimit_decisions_total', { bucket: 'requests', outcome: 'limited' }), 1);
  assert.equal(await t.metric('gateway_ratelimit_decisions_total', { bucket: 'tokens', outcome: 'limited' }), 1);
  assert.equal(await t.metric('gateway_ratelimit_decisions_total', { bucket: 'requests', outcome: 'allowed', source: 'redis' }), 4);
});

test('per-tenant limits override the tier; anonymous callers have a bucket per address', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, tenants: { capped: { requests: { burst: 1 } } } });
  ctx.after(() => t.limiter.close());
  assert.deepEqual(t.tenant('capped', 'tiny').requests, { perMinute: 1, burst: 1 });
  assert.deepEqual(t.tenant('other', 'tiny').requests, { perMinute: 1, burst: 3 });
  const p = t.limiter.policies;
  const anon1 = p.subject({ name: 'anon:10.0.0.1', tier: 'anonymous', anonymous: true }, '10.0.0.1');
  const anon2 = p.subject({ name: 'anon:10.0.0.2', tier: 'anonymous', anonymous: true }, '10.0.0.2');
  assert.equal(anon1.id, 'ip:10.0.0.1');
  assert.notEqual(anon1.keys.requests, anon2.keys.requests);
  for (let i = 0; i < 2; i++) assert.equal((await t.limiter.admit(anon1)).allowed, true);
  assert.equal((await t.limiter.admit(anon1)).allowed, false);
  assert.equal((await t.limiter.admit(anon2)).allowed, true, 'another address has its own bucket');
  assert.throws(() => t.tenant('lost', 'platinum'), /tier "platinum" is not defined/);
});

test('the global buckets are shared by every tenant and refuse by name', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS, global: { requests: { perMinute: 1, burst: 4 } } });
  ctx.after(() => t.limiter.close());
  let admitted = 0;
  for (let i = 0; i < 8; i++) if ((await t.limiter.admit(t.tenant(`g${i}`))).allowed) admitted++;
  assert.equal(admitted, 4);
  const d = await t.limiter.admit(t.tenant('g-late'));
  assert.equal(d.limitedBy, 'global-requests');
  assert.equal((await fx.redis.keys(`${t.prefix}ratelimit:{global}:*`)).length, 1);
  const g = testLimiter(fx.redis, { tiers: TIERS, global: { tokens: { perMinute: 600, burst: 500 } } });
  ctx.after(() => g.limiter.close());
  const fits = await g.limiter.admit(g.tenant('g-tokens'), { promptTokens: 100, maxTokens: 300 });
  assert.deepEqual(fits.buckets.map((b) => [b.name, b.remaining]), [['requests', 999], ['tokens', 9600], ['global-tokens', 100]]);
  const big = { promptTokens: 100, maxTokens: 401 };
  assert.match(refusalError(await g.limiter.admit(g.tenant('g-tokens'), big), big)?.message ?? '', /the service-wide token bucket holds at most 500/);
  const short = await g.limiter.admit(g.tenant('g-other'), { promptTokens: 100, maxTokens: 100 });
  assert.equal(short.limitedBy, 'global-tokens', 'another tenant meets the same global bucket');
});

test('hostile tenant names never reach a key unescaped', async (ctx) => {
  const t = testLimiter(fx.redis, { tiers: TIERS });
  ctx.after(() => t.limiter.close());
  const names = ['}{t:victim}', 'a\r\nFLUSHALL\r\n', 'x'.repeat(10_000), '\u0000', '{}'];
  for (const name of names) assert.equal((await t.limiter.admit(t.tenant(name), { promptTokens: 1, maxTokens: 1 })).allowed, true);
  const keys = await fx.redis.keys(`${t.prefix}*`);
  assert.equal(keys.length, 2 * names.length, 'each name has buckets of its own');
  for (const key of keys) {
    assert.match(key, /^test:[0-9a-f]{8}:ratelimit:\{~[A-Za-z0-9_-]{43}\}:(requests|tokens)$/, key.slice(0, 80));
  }
});

test('close sends the refunds still waiting', async () => {
  const t = testLimiter(fx.redis, { tiers: TIERS, refundFlushMs: 10_000 });
  const s = t.tenant('closing');
  const d = await t.limiter.admit(s, { promptTokens: 0, maxTokens: 500 });
  t.limiter.settle(d.reservation, 100);
  await t.limiter.close();
  const level = (await readBucket(fx.redis, s.keys.tokens))!.level / 60_000_000;
  assert.ok(level >= 9_900 && level < 9_901, `10000 - 500 + 400 refunded: ${level}`);
});
