/**
 * The limiter inside the gateway (in-process, `inject`), on the shared test Redis, with the
 * protocol-level fake worker as the backend.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { loadGatewayConfig } from '../../src/gateway/config.js';
import { createRedis, RedisConfigSchema, type RedisClient } from '../../src/gateway/plugins/redis.js';
import { join } from 'node:path';
import { UPPER_BOUND_COUNTER } from '../../src/gateway/limiter/prompt-tokens.js';
import { ChatGLMTokenizer } from '../../src/tokenizer/tokenizer.js';
import { readyClient } from '../helpers/limiter.js';
import { GOLDEN_TINY_DIR } from '../helpers/paths.js';
import { ConfigError } from '../../src/shared/config.js';
import { freePort, sleep } from '../../src/shared/net.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { sseData, testGateway, until } from '../helpers/gateway.js';

const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: RedisClient;
let worker: FakeWorker;

const TIERS = {
  small: { requests: { perMinute: 1, burst: 3 }, tokens: { perMinute: 1, burst: 1000 } },
  big: { requests: { perMinute: 1, burst: 1000 }, tokens: { perMinute: 1, burst: 3000 } },
  anonymous: { requests: { perMinute: 1, burst: 2 }, tokens: { perMinute: 1, burst: 100 } },
};
const KEYS = { acme: 'sk-acme-0123456789', big: 'sk-big-0123456789', ops: 'sk-ops-0123456789' };
const bearer = (name: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[name]}` });

before(async () => {
  redis = await readyClient({ url });
  worker = await startFakeWorker();
});
after(async () => {
  redis.disconnect();
  await worker.stop();
});

interface Built {
  app: FastifyInstance;
  prefix: string;
  keys(): Promise<string[]>;
}

async function gateway(limits: object = {}, over: Record<string, unknown> = {}, client: RedisClient | null = redis): Promise<Built> {
  const prefix = `test:${randomBytes(4).toString('hex')}:`;
  const app = await testGateway(
    {
      auth: {
        keys: [
          { sha256: sha256Hex(KEYS.acme), tenant: 'acme', tier: 'small' },
          { sha256: sha256Hex(KEYS.big), tenant: 'big', tier: 'big' },
          { sha256: sha256Hex(KEYS.ops), tenant: 'ops', tier: 'small' },
        ],
      },
      workers: { urls: [worker.url] },
      limits: { tiers: TIERS, allowList: ['ops'], refundFlushMs: 10_000, ...limits },
      ...over,
      redis: { keyPrefix: prefix, ...(over.redis as object | undefined) },
    } as never,
    { redis: client },
  );
  assert.ok(await until(() => app.pool.healthyCount() > 0, 3000), 'the fake worker is healthy');
  return { app, prefix, keys: () => redis.keys(`${prefix}ratelimit:*`) };
}

const chat = (content: string, max_tokens: number, extra: object = {}) => ({ messages: [{ role: 'user', content }], max_tokens, ...extra });
const cost = (content: string, max_tokens: number) => UPPER_BOUND_COUNTER.chat([{ role: 'user', metadata: '', content }]) + max_tokens;

test('answers, streamed or not, and other /v1 routes carry the IETF and OpenAI headers', async (ctx) => {
  const { app } = await gateway();
  ctx.after(() => app.close());
  const r1 = await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('acme'), payload: chat('你好', 100) });
  assert.equal(r1.statusCode, 200, r1.body);
  assert.equal(r1.headers['ratelimit-policy'], '"requests";q=3;w=180;qu="request", "tokens";q=1000;w=60000');
  const reserved = cost('你好', 100);
  assert.equal(r1.headers.ratelimit, `"requests";r=2;t=60, "tokens";r=${1000 - reserved};t=${reserved * 60}`);
  assert.equal(r1.headers['x-ratelimit-limit-requests'], '3');
  assert.equal(r1.headers['x-ratelimit-remaining-requests'], '2');
  assert.equal(r1.headers['x-ratelimit-reset-requests'], '1m0s');
  assert.equal(r1.headers['x-ratelimit-limit-tokens'], '1000');
  assert.equal(r1.headers['x-ratelimit-remaining-tokens'], String(1000 - reserved));

  const r2 = await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('acme'), payload: chat('你好', 10, { stream: true }) });
  assert.equal(r2.statusCode, 200);
  assert.match(String(r2.headers['content-type']), /^text\/event-stream/);
  assert.equal(r2.headers['x-ratelimit-remaining-requests'], '1', 'a streamed answer has them too');
  assert.ok(r2.headers['ratelimit-policy']);
  assert.equal(sseData(r2.body).at(-1), '[DONE]');

  const r3 = await app.inject({ url: '/v1/models', headers: bearer('acme') });
  assert.equal(r3.statusCode, 200);
  assert.equal(r3.headers['x-ratelimit-remaining-requests'], '0', 'one request bucket for every route');
  for (const path of ['/healthz', '/readyz', '/metrics']) {
    const r = await app.inject({ url: path });
    assert.equal(r.headers['ratelimit-policy'], undefined, `${path} is not limited`);
  }
});

test('a 429 has Retry-After and names the empty bucket', async () => {
  const { app } = await gateway();
  try {
    for (let i = 0; i < 3; i++) assert.equal((await app.inject({ url: '/v1/models', headers: bearer('acme') })).statusCode, 200);
    const r = await app.inject({ url: '/v1/models', headers: bearer('acme') });
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '60');
    assert.equal(r.headers['x-ratelimit-remaining-requests'], '0');
    const body = r.json();
    assert.equal(body.error.code, 'rate_limited');
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(body.error.message, /the "requests" bucket of tenant "acme" is empty \(1 requests per minute, burst 3\); retry in (59\.\d+s|1m0s)$/);
    const a = await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('acme'), payload: chat('hi', 10) });
    assert.equal(a.statusCode, 429, 'the answer routes take from the same request bucket');

    // The worker uses every token it may, so the first answer keeps (almost) all it reserved.
    await worker.script({ tokens: Array.from({ length: 1500 }, () => '字') });
    const big = 'x'.repeat(100);
    let t2;
    try {
      const t1 = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: bearer('big'), payload: { model: 'chatglm3-6b', ...chat(big, 1500) } });
      assert.equal(t1.statusCode, 200, t1.body);
      assert.equal(t1.json().usage.completion_tokens, 1500);
      t2 = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: bearer('big'), payload: { model: 'chatglm3-6b', ...chat(big, 1500) } });
    } finally {
      await worker.script({ tokens: ['根据', '《民法典》', '规定', '，', '借款', '应当', '按期', '归还', '。'] });
    }
    const left = 3000 - cost(big, 1500);
    assert.equal(t2.statusCode, 429);
    assert.equal(t2.json().error.type, 'rate_limit_error');
    assert.match(t2.json().error.message, new RegExp(`the "tokens" bucket of tenant "big" is empty \\(1 tokens per minute, burst 3000\\); this request needs ${cost(big, 1500)} and \\d+ are left`));
    assert.ok(Number(t2.headers['retry-after']) >= 1);
    assert.equal(Number(t2.headers['x-ratelimit-remaining-tokens']), left + cost(big, 0) - 100, 'the first answer kept what it used (prompt counted by the worker: 100)');
  } finally {
    await app.close();
  }
});

test('a request that could never fit is a 400 naming max_tokens, and takes nothing', async (ctx) => {
  const { app, keys } = await gateway();
  ctx.after(() => app.close());
  const r = await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('acme'), payload: chat('hi', 999) });
  assert.equal(r.statusCode, 400);
  const body = r.json();
  assert.equal(body.error.code, 'token_budget_exceeded');
  assert.equal(body.error.param, 'max_tokens');
  assert.match(body.error.message, new RegExp(`needs ${cost('hi', 999)} tokens \\(${cost('hi', 0)} in the prompt \\+ max_tokens 999\\).*holds at most 1000`));
  assert.deepEqual(await keys(), [], 'no bucket was touched');
});

test('malformed, unknown and hostile API keys get the same 401 and never reach the limiter', async (ctx) => {
  const { app, keys } = await gateway();
  ctx.after(() => app.close());
  const bodies = new Set<string>();
  for (const authorization of ['Bearer sk-unknown-0123456789', 'Bearer ', 'Basic abc', `Bearer ${'k'.repeat(5000)}`, 'Bearer {t:acme}', 'Bearer a\u0001b', `Bearer ${KEYS.acme}x`]) {
    const r = await app.inject({ url: '/v1/models', headers: { authorization } });
    assert.equal(r.statusCode, 401, authorization.slice(0, 30));
    assert.equal(r.headers['ratelimit-policy'], undefined);
    bodies.add(r.body);
  }
  assert.equal(bodies.size, 1, 'no hint whether a key exists');
  assert.deepEqual(await keys(), []);
});

test('invalid bodies are refused by validation before the limiter takes anything', async (ctx) => {
  const { app } = await gateway();
  ctx.after(() => app.close());
  for (const payload of ['{', '{"messages":[]}', '{"messages":"x"}', '{"messages":[{"role":"user"}]}', '{"messages":[{"role":"user","content":"a"}],"max_tokens":-5}']) {
    const r = await app.inject({ method: 'POST', url: '/v1/chat', headers: { ...bearer('acme'), 'content-type': 'application/json' }, payload });
    assert.equal(r.statusCode, 400, payload);
  }
  const r = await app.inject({ url: '/v1/models', headers: bearer('acme') });
  assert.equal(r.headers['x-ratelimit-remaining-requests'], '2', 'the refused bodies took no request token');
});

test('refunds: an early stop returns the unused reservation; a fallback answer returns all of it', async () => {
  const { app } = await gateway();
  try {
    const content = '借钱不还怎么办';
    const reserved = cost(content, 500);
    const r1 = await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('big'), payload: chat(content, 500) });
    assert.equal(r1.statusCode, 200);
    const used = r1.json().usage.total_tokens as number;
    assert.equal(r1.json().finish_reason, 'stop', 'the worker stopped after 9 of 500 tokens');
    const r2 = await app.inject({ url: '/v1/models', headers: bearer('big') });
    assert.equal(r2.headers['x-ratelimit-remaining-tokens'], String(3000 - used), 'what was not used came back');
    assert.ok(3000 - used > 3000 - reserved);

    await worker.script({ mode: 'fail' });
    try {
      const r3 = await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('big'), payload: chat(content, 500) });
      assert.equal(r3.statusCode, 200);
      assert.ok(r3.json().degraded, 'answered by the fallback');
    } finally {
      await worker.script({ mode: 'ok' });
    }
    const r4 = await app.inject({ url: '/v1/models', headers: bearer('big') });
    assert.equal(r4.headers['x-ratelimit-remaining-tokens'], String(3000 - used), 'the fallback answer used no LLM tokens');
  } finally {
    await app.close();
  }
});

test('allow-listed tenants are never limited and never reach Redis', async (ctx) => {
  const { app, keys } = await gateway();
  ctx.after(() => app.close());
  for (let i = 0; i < 6; i++) {
    const r = await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('ops'), payload: chat('hi', 10) });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['ratelimit-policy'], undefined);
  }
  assert.deepEqual(await keys(), []);
});

test('anonymous callers are limited by address, an IPv6 /64 counting as one; hostile addresses are escaped', async (ctx) => {
  const { app, keys, prefix } = await gateway({}, { auth: { anonymous: true, trustProxy: true, keys: [] } });
  ctx.after(() => app.close());
  const from = (ip: string) => app.inject({ url: '/v1/models', headers: { 'x-forwarded-for': ip } });
  assert.equal((await from('10.1.1.1')).statusCode, 200);
  assert.equal((await from('10.1.1.1')).statusCode, 200);
  assert.equal((await from('10.1.1.1')).statusCode, 429);
  assert.equal((await from('10.1.1.2')).statusCode, 200);
  assert.equal((await from('2001:db8:1:2::1')).statusCode, 200);
  assert.equal((await from('2001:db8:1:2::ffff')).statusCode, 200);
  const r = await from('2001:db8:1:2:abcd::9');
  assert.equal(r.statusCode, 429);
  assert.match(r.json().error.message, /client 2001:db8:1:2::/);
  for (const ip of ['{t:acme}', '}{', 'x'.repeat(5000), 'a b', '\u007f']) {
    const h = await from(ip);
    assert.ok(h.statusCode === 200 || h.statusCode === 429, String(h.statusCode));
  }
  const all = await keys();
  assert.ok(all.length >= 4);
  for (const key of all) {
    assert.ok(key.startsWith(`${prefix}ratelimit:{`));
    assert.match(key.slice(prefix.length), /^ratelimit:\{(ip:[A-Za-z0-9._:@-]+|~[A-Za-z0-9_-]{43})\}:requests$/, key.slice(0, 80));
  }
});

test('fail-closed answers 503 REDIS_UNAVAILABLE with Retry-After when Redis cannot be reached', async (ctx) => {
  const dead = createRedis(RedisConfigSchema.parse({ url: `redis://127.0.0.1:${await freePort()}`, connectTimeoutMs: 100 }))!;
  dead.on('error', () => {});
  const { app } = await gateway({ outage: { policy: 'fail-closed' } }, { redis: { connectTimeoutMs: 100 } }, dead);
  ctx.after(async () => {
    await app.close();
    dead.disconnect();
  });
  for (const r of [
    await app.inject({ url: '/v1/models', headers: bearer('acme') }),
    await app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('acme'), payload: chat('hi', 10) }),
  ]) {
    assert.equal(r.statusCode, 503);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal(r.json().error.code, 'redis_unavailable');
  }
});

test('metrics count decisions by bucket, outcome and tier on the gateway registry, every tier at zero from the start', async (ctx) => {
  const { app } = await gateway();
  ctx.after(() => app.close());
  const before = (await app.inject({ url: '/metrics' })).body;
  for (const tier of Object.keys(TIERS)) {
    for (const [outcome, source] of [['allowed', 'redis'], ['limited', 'local'], ['too_large', 'none'], ['fail_closed', 'none']]) {
      const series = `gateway_ratelimit_decisions_total{bucket="tokens",outcome="${outcome}",source="${source}",tier="${tier}",process="gateway"} 0`;
      assert.ok(before.includes(series), series);
    }
  }
  assert.doesNotMatch(before, /outcome="allowed",source="none"/, 'no series for a pair a decision cannot have');
  assert.doesNotMatch(before, /bucket="global-/, 'no series for global buckets that are off');
  for (let i = 0; i < 4; i++) await app.inject({ url: '/v1/models', headers: bearer('acme') });
  const text = (await app.inject({ url: '/metrics' })).body;
  assert.match(text, /gateway_ratelimit_decisions_total\{bucket="requests",outcome="allowed",source="redis",tier="small",process="gateway"\} 3/);
  assert.match(text, /gateway_ratelimit_decisions_total\{bucket="requests",outcome="limited",source="redis",tier="small",process="gateway"\} 1/);
  assert.match(text, /gateway_ratelimit_decisions_total\{bucket="requests",outcome="allowed",source="redis",tier="big",process="gateway"\} 0/);
  assert.match(text, /gateway_ratelimit_mode\{mode="redis",process="gateway"\} 1/);
  assert.match(text, /gateway_ratelimit_duration_seconds_count\{process="gateway",source="redis"\} 4/);
});

test('limits.enabled=false takes nothing; a tier that auth uses but limits lack stops start-up', async (ctx) => {
  const { app, keys } = await gateway({ enabled: false });
  ctx.after(() => app.close());
  for (let i = 0; i < 5; i++) {
    const r = await app.inject({ url: '/v1/models', headers: bearer('acme') });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['ratelimit-policy'], undefined);
  }
  assert.deepEqual(await keys(), []);
  assert.throws(
    () => loadGatewayConfig({ GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: sha256Hex('k'), tenant: 't', tier: 'gold' }]) }),
    (err: unknown) => err instanceof ConfigError && /GATEWAY_LIMITS_TIERS.*tier "gold" is used by auth but not defined/.test(err.message),
  );
});

test('with the model tokenizer, from a file or from a worker, the reservation counts the prompt exactly', async () => {
  const file = join(GOLDEN_TINY_DIR, 'tokenizer.model');
  const tokenizer = await ChatGLMTokenizer.fromFile(file);
  const messages = [{ role: 'user' as const, content: '朋友借钱不还，我该怎么起诉？' }];
  const exact = tokenizer.applyChatTemplate(messages).length + 50;
  assert.ok(exact < cost(messages[0]!.content, 50), 'the upper bound is looser');

  const fromFile = await gateway({}, { model: { tokenizerPath: file } });
  try {
    assert.equal(fromFile.app.prompts.exact, true);
    await worker.script({ ttftMs: 300 });
    const inflight = fromFile.app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('big'), payload: { messages, max_tokens: 50 } });
    await until(async () => (await worker.stats()).active > 0, 2000, 10);
    const r = await fromFile.app.inject({ url: '/v1/models', headers: bearer('big') });
    assert.equal(r.headers['x-ratelimit-remaining-tokens'], String(3000 - exact), 'reserved: the templated prompt + max_tokens');
    assert.equal((await inflight).statusCode, 200);
  } finally {
    await worker.script({ ttftMs: 0 });
    await fromFile.app.close();
  }

  await worker.script({ tokenizerFile: file });
  const fetched = await gateway();
  try {
    assert.ok(await until(() => fetched.app.prompts.exact, 3000), 'fetched from the worker');
    const r = await fetched.app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('big'), payload: { messages, max_tokens: 50 } });
    assert.equal(r.headers['x-ratelimit-remaining-tokens'], String(3000 - exact));
  } finally {
    await worker.script({ tokenizerFile: '' });
    await fetched.app.close();
  }
});

test('a tokenizer that cannot be used: a bad file stops start-up naming the key; a bad answer from a worker is skipped', async (ctx) => {
  await assert.rejects(
    gateway({}, { model: { tokenizerPath: join(GOLDEN_TINY_DIR, 'config.json') } }),
    (err: unknown) => err instanceof ConfigError && /GATEWAY_MODEL_TOKENIZER_PATH/.test(err.message),
  );
  await assert.rejects(
    gateway({}, { model: { tokenizerPath: join(GOLDEN_TINY_DIR, 'no-such-file') } }),
    (err: unknown) => err instanceof ConfigError && /GATEWAY_MODEL_TOKENIZER_PATH.*cannot be read/.test(err.message),
  );
  await worker.script({ tokenizerFile: join(GOLDEN_TINY_DIR, 'config.json') });
  const g = await gateway();
  ctx.after(async () => {
    await worker.script({ tokenizerFile: '' });
    await g.app.close();
  });
  await sleep(400); // several attempts at the health interval
  assert.equal(g.app.prompts.exact, false, 'still the upper bound');
  const r = await g.app.inject({ method: 'POST', url: '/v1/chat', headers: bearer('big'), payload: chat('你好', 10) });
  assert.equal(r.statusCode, 200);
  assert.equal(r.headers['x-ratelimit-remaining-tokens'], String(3000 - cost('你好', 10)));
});
