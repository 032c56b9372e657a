import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { Registry } from 'prom-client';
import { createRedis, RedisConfigSchema, type RedisClient } from '../../src/gateway/redis.js';
import { LimitsConfigSchema } from '../../src/gateway/limiter/config.js';
import limiterPlugin from '../../src/gateway/limiter/plugin.js';
import { freePort } from '../../src/shared/net.js';
import { limitedApp } from '../helpers/limited-app.js';
import { until } from '../helpers/limiter.js';

const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: RedisClient;

const LIMITS = {
  tiers: {
    free: { requests: { perMinute: 1, burst: 3 }, tokens: { perMinute: 1, burst: 1000 } },
    big: { requests: { perMinute: 1, burst: 1000 }, tokens: { perMinute: 1, burst: 10_000 } },
    anonymous: { requests: { perMinute: 1, burst: 2 }, tokens: { perMinute: 1, burst: 100 } },
  },
  allowList: ['ops'],
  refundFlushMs: 10_000,
};
const KEYS = {
  'key-acme': { name: 'acme', tier: 'free', anonymous: false },
  'key-big': { name: 'big', tier: 'big', anonymous: false },
  'key-ops': { name: 'ops', tier: 'free', anonymous: false },
};

before(async () => {
  redis = createRedis(RedisConfigSchema.parse({ url }))!;
  redis.on('error', () => {});
  assert.ok(await until(() => redis.status === 'ready', 2000));
});
after(() => redis.disconnect());

async function app(limits: object = LIMITS, client: RedisClient | null = redis) {
  const keyPrefix = `test:${randomBytes(4).toString('hex')}:`;
  return Object.assign(await limitedApp({ redis: client, limits, keyPrefix, keys: KEYS }), { keyPrefix });
}

const chat = (content: string, max_tokens?: number) => ({ messages: [{ role: 'user', content }], ...(max_tokens ? { max_tokens } : {}) });

test('admitted responses carry the IETF and OpenAI headers', async () => {
  const a = await app();
  try {
    const r1 = await a.inject({ method: 'POST', url: '/v1/chat', headers: { authorization: 'Bearer key-acme' }, payload: chat('hello', 95) });
    assert.equal(r1.statusCode, 200);
    assert.equal(r1.json().reserved, 100);
    assert.equal(r1.headers['ratelimit-policy'], '"requests";q=3;w=180;qu="request", "tokens";q=1000;w=60000');
    assert.match(String(r1.headers.ratelimit), /^"requests";r=2;t=60, "tokens";r=900;t=6000$/);
    assert.equal(r1.headers['x-ratelimit-limit-requests'], '3');
    assert.equal(r1.headers['x-ratelimit-remaining-requests'], '2');
    assert.equal(r1.headers['x-ratelimit-reset-requests'], '1m0s');
    assert.equal(r1.headers['x-ratelimit-limit-tokens'], '1000');
    assert.equal(r1.headers['x-ratelimit-remaining-tokens'], '900');
    assert.equal(r1.headers['x-ratelimit-reset-tokens'], '1h40m0s');
    const r2 = await a.inject({ method: 'GET', url: '/v1/models', headers: { authorization: 'Bearer key-acme' } });
    assert.equal(r2.statusCode, 200);
    assert.equal(r2.headers['x-ratelimit-remaining-requests'], '1', 'every route takes from the same request bucket');
    assert.equal(r2.headers['x-ratelimit-remaining-tokens'], '900');
    assert.equal(r2.headers['retry-after'], undefined);
  } finally {
    await a.close();
  }
});

test('a 429 has Retry-After and names the empty bucket', async () => {
  const a = await app();
  try {
    for (let i = 0; i < 3; i++) assert.equal((await a.inject({ url: '/v1/models', headers: { authorization: 'Bearer key-acme' } })).statusCode, 200);
    const r = await a.inject({ url: '/v1/models', headers: { authorization: 'Bearer key-acme' } });
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '60');
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');
    const body = r.json();
    assert.equal(body.error.code, 'rate_limited');
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(body.error.message, /the "requests" bucket of tenant "acme" is empty \(1 requests per minute, burst 3\); retry in (59\.\d+s|1m0s)$/);

    const t1 = await a.inject({ method: 'POST', url: '/v1/chat', headers: { authorization: 'Bearer key-big' }, payload: chat('x'.repeat(100), 9000) });
    assert.equal(t1.statusCode, 200);
    const t2 = await a.inject({ method: 'POST', url: '/v1/chat', headers: { authorization: 'Bearer key-big' }, payload: chat('x'.repeat(100), 1000) });
    assert.equal(t2.statusCode, 429);
    assert.match(t2.json().error.message, /the "tokens" bucket of tenant "big" is empty \(1 tokens per minute, burst 10000\); this request needs 1100 and 900 are left/);
    assert.ok(Number(t2.headers['retry-after']) >= 1);
  } finally {
    await a.close();
  }
});

test('a request that could never fit is a 400 naming max_tokens, and takes nothing', async () => {
  const a = await app();
  try {
    const r = await a.inject({ method: 'POST', url: '/v1/chat', headers: { authorization: 'Bearer key-acme' }, payload: chat('hi', 999) });
    assert.equal(r.statusCode, 400);
    const body = r.json();
    assert.equal(body.error.code, 'token_budget_exceeded');
    assert.equal(body.error.param, 'max_tokens');
    assert.match(body.error.message, /needs 1001 tokens \(2 in the prompt \+ max_tokens 999\).*holds at most 1000/);
    assert.equal((await redis.keys(`${a.keyPrefix}*`)).length, 0, 'no bucket was touched');
  } finally {
    await a.close();
  }
});

test('invalid bodies are refused by validation before the limiter takes anything', async () => {
  const a = await app();
  try {
    for (const payload of ['{', '{"messages":[]}', '{"messages":"x"}', '{"messages":[{"role":"user"}]}', '{"messages":[{"content":{}}]}', '{"messages":[{"content":"a"}],"max_tokens":-5}']) {
      const r = await a.inject({ method: 'POST', url: '/v1/chat', headers: { authorization: 'Bearer key-acme', 'content-type': 'application/json' }, payload });
      assert.equal(r.statusCode, 400, payload);
    }
    const r = await a.inject({ method: 'POST', url: '/v1/chat', headers: { authorization: 'Bearer key-acme' }, payload: chat('ok') });
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '2', 'the refused bodies took no request token');
  } finally {
    await a.close();
  }
});

test('refunds: the unused part returns; an error answer returns everything; a success without usage is charged in full', async () => {
  const a = await app();
  const h = { authorization: 'Bearer key-big' };
  try {
    await a.inject({ method: 'POST', url: '/v1/chat', headers: { ...h, 'x-test-used': '150' }, payload: chat('x'.repeat(100), 400) });
    const r2 = await a.inject({ method: 'POST', url: '/v1/chat', headers: { ...h, 'x-test-fail': '1' }, payload: chat('x'.repeat(100), 400) });
    assert.equal(r2.statusCode, 503);
    assert.equal(r2.headers['x-ratelimit-remaining-tokens'], String(10_000 - 500 + 350 - 500), 'the first refund rode on the second request');
    const r3 = await a.inject({ method: 'POST', url: '/v1/chat', headers: h, payload: chat('x'.repeat(100), 400) });
    assert.equal(r3.headers['x-ratelimit-remaining-tokens'], String(9_350 + 500 - 500), 'the failed answer was refunded in full');
    const r4 = await a.inject({ method: 'GET', url: '/v1/models', headers: h });
    assert.equal(r4.headers['x-ratelimit-remaining-tokens'], '9350', 'no usage reported on a success: charged in full');
  } finally {
    await a.close();
  }
});

test('allow-listed tenants and unlimited routes never reach Redis', async () => {
  const a = await app();
  try {
    for (let i = 0; i < 10; i++) {
      const r = await a.inject({ url: '/v1/models', headers: { authorization: 'Bearer key-ops' } });
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['ratelimit-policy'], undefined);
      assert.equal((await a.inject({ url: '/healthz' })).statusCode, 200);
    }
    assert.equal((await redis.keys(`${a.keyPrefix}*`)).length, 0);
  } finally {
    await a.close();
  }
});

test('anonymous callers are limited by address, an IPv6 /64 counting as one', async () => {
  const a = await app();
  try {
    const from = (ip: string) => a.inject({ url: '/v1/models', headers: { 'x-forwarded-for': ip } });
    assert.equal((await from('10.1.1.1')).statusCode, 200);
    assert.equal((await from('10.1.1.1')).statusCode, 200);
    assert.equal((await from('10.1.1.1')).statusCode, 429);
    assert.equal((await from('10.1.1.2')).statusCode, 200);
    assert.equal((await from('2001:db8:1:2::1')).statusCode, 200);
    assert.equal((await from('2001:db8:1:2::ffff')).statusCode, 200);
    const r = await from('2001:db8:1:2:abcd::9');
    assert.equal(r.statusCode, 429);
    assert.match(r.json().error.message, /client 2001:db8:1:2::/);
  } finally {
    await a.close();
  }
});

test('hostile client addresses never reach a key unescaped', async () => {
  const a = await app();
  try {
    for (const ip of ['{t:acme}', '}{', 'x'.repeat(5000), 'a b\tc', '\u007f']) {
      const r = await a.inject({ url: '/v1/models', headers: { 'x-forwarded-for': ip } });
      assert.ok(r.statusCode === 200 || r.statusCode === 429, String(r.statusCode));
    }
    const keys = await redis.keys(`${a.keyPrefix}*`);
    assert.ok(keys.length > 0);
    for (const key of keys) assert.match(key, /^test:[0-9a-f]{8}:ratelimit:\{(ip:[A-Za-z0-9._:@-]+|~[A-Za-z0-9_-]{43})\}:requests$/, key.slice(0, 80));
    assert.equal((await redis.keys(`${a.keyPrefix}ratelimit:{t:acme}*`)).length, 0, 'no way into a tenant bucket');
  } finally {
    await a.close();
  }
});

test('fail-closed answers 503 REDIS_UNAVAILABLE with Retry-After when Redis cannot be reached', async () => {
  const dead = createRedis(RedisConfigSchema.parse({ url: `redis://127.0.0.1:${await freePort()}` }))!;
  dead.on('error', () => {});
  const a = await app({ ...LIMITS, outage: { policy: 'fail-closed' } }, dead);
  try {
    const r = await a.inject({ url: '/v1/models', headers: { authorization: 'Bearer key-acme' } });
    assert.equal(r.statusCode, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.json().error.code, 'redis_unavailable');
  } finally {
    await a.close();
    dead.disconnect();
  }
});

test('metrics count decisions by bucket and outcome', async () => {
  const a = await app();
  try {
    for (let i = 0; i < 4; i++) await a.inject({ url: '/v1/models', headers: { authorization: 'Bearer key-acme' } });
    const text = await a.registry.metrics();
    assert.match(text, /gateway_ratelimit_decisions_total\{bucket="requests",outcome="allowed",source="redis"\} 3/);
    assert.match(text, /gateway_ratelimit_decisions_total\{bucket="requests",outcome="limited",source="redis"\} 1/);
    assert.match(text, /gateway_ratelimit_mode\{mode="redis"\} 1/);
    assert.match(text, /gateway_ratelimit_duration_seconds_count\{source="redis"\} 4/);
  } finally {
    await a.close();
  }
});

test('limits.enabled=false registers nothing; groupId is refused at start', async () => {
  const a = await app({ ...LIMITS, enabled: false });
  try {
    for (let i = 0; i < 5; i++) {
      const r = await a.inject({ url: '/v1/models', headers: { authorization: 'Bearer key-acme' } });
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['ratelimit-policy'], undefined);
    }
  } finally {
    await a.close();
  }
  const bad = Fastify({ logger: false });
  await bad.register(limiterPlugin, { limits: LimitsConfigSchema.parse(LIMITS), redis, keyPrefix: 'test:x:', registry: new Registry(), tenantOf: () => null });
  assert.throws(() => bad.get('/grouped', { config: { rateLimit: { groupId: 'g' } } }, async () => ({})), /groupId is not supported/);
  await bad.close();
});
