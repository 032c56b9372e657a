/**
 * The limiter across gateway replicas: four gateway processes on one private Redis, the
 * protocol-level fake worker behind them. Counts are checked against the buckets' own state in
 * Redis and Redis time: a bucket that was full at t0 and is at level l at t holds
 * `burst + rate·(t − t0) − taken`, to the unit (one token = 60,000,000 units, a bucket refilling r
 * tokens a minute gains r units a µs).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { UPPER_BOUND_COUNTER } from '../../src/gateway/limiter/prompt-tokens.js';
import { sleep } from '../../src/shared/net.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { until } from '../helpers/gateway.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { readBucket } from '../helpers/limiter.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';

const UNIT = 60_000_000;
const BIG = { perMinute: 1_000_000, burst: 1_000_000 };
const TIERS = {
  exactRequests: { requests: { perMinute: 60, burst: 40 }, tokens: BIG },
  exactBatched: { requests: { perMinute: 60, burst: 40 }, tokens: BIG },
  exactTokens: { requests: BIG, tokens: { perMinute: 600, burst: 3000 } },
  refill: { requests: { perMinute: 600, burst: 5 }, tokens: BIG },
  refund: { requests: BIG, tokens: { perMinute: 1, burst: 2000 } },
  outage: { requests: { perMinute: 600, burst: 20 }, tokens: BIG },
  anonymous: { requests: { perMinute: 1, burst: 1 }, tokens: { perMinute: 1, burst: 1 } },
};
const TENANTS = Object.keys(TIERS).filter((t) => t !== 'anonymous');
const keyOf = (tenant: string) => `sk-${tenant}-0123456789`;
const bearer = (tenant: string) => ({ authorization: `Bearer ${keyOf(tenant)}` });

let redis: PrivateRedis;
let look: Redis;
let worker: FakeWorker;
let gateways: GatewayProcess[] = [];
const agent = new Agent({ connections: 256 });

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    GATEWAY_REDIS_URL: redis.url,
    // Generous: on a busy test machine a starved process sees its timers fire before the replies
    // it has not read yet, and a short timeout would send decisions to the outage policy, which
    // is another test's subject. A killed Redis closes the connection, so nothing waits on it.
    GATEWAY_REDIS_COMMAND_TIMEOUT_MS: '10000',
    GATEWAY_AUTH_KEYS: JSON.stringify(TENANTS.map((t) => ({ sha256: sha256Hex(keyOf(t)), tenant: t, tier: t }))),
    GATEWAY_LIMITS_TIERS: JSON.stringify(TIERS),
    GATEWAY_LIMITS_OUTAGE_POLICY: 'local',
    GATEWAY_LIMITS_OUTAGE_REPLICAS: '4',
    GATEWAY_WORKERS_URLS: worker.url,
    GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '100',
    GATEWAY_KNOWLEDGE_BASE_PATH: '',
    ...extra,
  };
}

before(async () => {
  redis = await startPrivateRedis();
  look = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
  look.on('error', () => {});
  worker = await startFakeWorker();
  gateways = await Promise.all([0, 1, 2, 3].map(() => startGatewayProcess(env())));
});
after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await worker.stop();
  look.disconnect();
  await redis.stop();
  await agent.close();
});

interface Reply {
  status: number;
  ms: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

async function call(gateway: GatewayProcess, path: string, tenant: string, body?: object): Promise<Reply> {
  const t0 = performance.now();
  const res = await request(`${gateway.url}${path}`, {
    dispatcher: agent,
    method: body ? 'POST' : 'GET',
    headers: { ...bearer(tenant), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.body.text();
  return { status: res.statusCode, ms: performance.now() - t0, body: text, headers: res.headers };
}

async function bucket(tenant: string, name: 'requests' | 'tokens'): Promise<{ level: number; t: number }> {
  const state = await readBucket(look, `chat:ratelimit:{t:${tenant}}:${name}`);
  assert.ok(state, 'the bucket is not full, so its key exists');
  return state;
}

async function metric(gateway: GatewayProcess, pattern: RegExp): Promise<number> {
  const text = await (await request(`${gateway.url}/metrics`, { dispatcher: agent })).body.text();
  let sum = 0;
  for (const line of text.split('\n')) if (pattern.test(line)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

const localDecisions = () => Promise.all(gateways.map((g) => metric(g, /^gateway_ratelimit_decisions_total\{.*source="local"/))).then((v) => v.reduce((a, b) => a + b, 0));

/** 400 requests over `replicas` after ten taken first: exactly the burst plus the refill is admitted, never one more. */
async function burstIsExact(replicas: GatewayProcess[], tenant: 'exactRequests' | 'exactBatched'): Promise<void> {
  // Ten taken first, so the bucket is ten short and cannot be full again for 10 s: from here on
  // its level is exactly what it was, plus the refill, minus what was taken.
  for (let i = 0; i < 10; i++) assert.equal((await call(replicas[i % 4]!, '/v1/models', tenant)).status, 200);
  const start = await bucket(tenant, 'requests');
  const replies = await Promise.all(Array.from({ length: 400 }, (_, i) => call(replicas[i % 4]!, '/v1/models', tenant)));
  const end = await bucket(tenant, 'requests');
  assert.ok(replies.every((r) => r.status === 200 || r.status === 429), 'only admissions and refusals');
  const local = await Promise.all(replicas.map((g) => metric(g, /^gateway_ratelimit_decisions_total\{.*source="local"/)));
  assert.equal(local.reduce((a, b) => a + b, 0), 0, 'every decision was made in Redis');
  const admitted = replies.filter((r) => r.status === 200).length;
  const rate = TIERS[tenant].requests.perMinute;
  assert.equal(admitted * UNIT, start.level + rate * (end.t - start.t) - end.level, 'taken = what was left + refill − what is left, to the unit');
  assert.ok(end.level < UNIT, 'nothing was left that could have admitted one more');
  assert.equal(admitted, Math.floor((start.level + rate * (end.t - start.t)) / UNIT), 'the whole tokens left and refilled');
  assert.ok(10 + admitted >= 40, 'the burst of 40, and more as it refilled');
}

test('a burst of 10× the request burst over four replicas admits exactly the burst plus the refill, never one more', async () => {
  await burstIsExact(gateways, 'exactRequests');
});

test('the same with admission batches forced large (a 3 ms window): batches of many, and still not one more', async (ctx) => {
  const batched = await Promise.all([0, 1, 2, 3].map(() => startGatewayProcess(env({ GATEWAY_LIMITS_BATCH_WINDOW_US: '3000', GATEWAY_LIMITS_BATCH_MAX_SIZE: '1024' }))));
  ctx.after(() => Promise.all(batched.map((g) => g.stop())));
  await burstIsExact(batched, 'exactBatched');
  const sums = await Promise.all(batched.map((g) => metric(g, /^gateway_ratelimit_batch_size_sum/)));
  const counts = await Promise.all(batched.map((g) => metric(g, /^gateway_ratelimit_batch_size_count/)));
  const total = sums.reduce((a, b) => a + b, 0);
  const calls = counts.reduce((a, b) => a + b, 0);
  assert.ok(total >= 410, `every admission went in a batch (${total})`);
  assert.ok(total / calls > 2, `batches averaged ${(total / calls).toFixed(1)} admissions`);
});

test('the same for the token bucket with mixed request sizes', async (ctx) => {
  const tenant = 'exactTokens';
  // Admitted answers hang at the worker, so no refund lands until every request is decided;
  // then they are cancelled.
  await worker.script({ mode: 'hang' });
  const controllers: AbortController[] = [];
  const send = (i: number, max_tokens = 20 + ((i * 53) % 200)) => {
    const content = 'q'.repeat(10 + ((i * 37) % 90));
    const controller = new AbortController();
    controllers.push(controller);
    const body = JSON.stringify({ messages: [{ role: 'user', content }], max_tokens });
    const outcome = { cost: UPPER_BOUND_COUNTER.chat([{ role: 'user', metadata: '', content }]) + max_tokens, status: 0 };
    request(`${gateways[i % 4]!.url}/v1/chat`, {
      dispatcher: agent,
      method: 'POST',
      headers: { ...bearer(tenant), 'content-type': 'application/json' },
      body,
      signal: controller.signal,
    }).then(
      async (res) => {
        outcome.status = res.statusCode;
        await res.body.dump();
      },
      () => {},
    );
    return outcome;
  };
  ctx.after(async () => {
    for (const c of controllers) c.abort();
    await worker.script({ mode: 'ok' });
    await until(async () => (await worker.stats()).active === 0, 5000, 20);
  });
  const first = send(0, 1000); // ~1000 short: the bucket cannot be full again for 100 s
  assert.ok(await until(async () => (await worker.stats()).active === 1, 5000, 10));
  const { t: t0 } = await bucket(tenant, 'tokens');
  const burst = Array.from({ length: 180 }, (_, i) => send(i + 1));
  assert.ok(burst.reduce((n, r) => n + r.cost, 0) > 10 * 3000, '10× the burst');
  const decided = async () => burst.filter((r) => r.status === 429).length + (await worker.stats()).active === 181;
  assert.ok(await until(decided, 30_000, 20), 'every request refused, or admitted and at the worker');
  const { level, t } = await bucket(tenant, 'tokens');
  assert.equal(first.status, 0, 'the first one is still running');
  assert.ok(burst.every((r) => r.status === 0 || r.status === 429), 'refusals only, the rest running');
  assert.equal(await localDecisions(), 0, 'every decision was made in Redis');
  const taken = first.cost + burst.reduce((n, r) => n + (r.status === 0 ? r.cost : 0), 0);
  const rate = TIERS.exactTokens.tokens.perMinute;
  assert.equal(taken * UNIT, 3000 * UNIT + rate * (t - t0) - level, 'taken = burst + refill − what is left, to the unit');
  assert.ok(level >= 0, 'never one more');
  assert.ok(taken > 3000 - Math.max(...burst.map((r) => r.cost)), 'the bucket was drained');
});

test('after the bucket is empty, admissions over 10 s match the rate within one token', async () => {
  const tenant = 'refill';
  for (let i = 0; i < 10; i++) await call(gateways[i % 4]!, '/v1/models', tenant);
  const start = await bucket(tenant, 'requests');
  assert.ok(start.level < UNIT, 'empty');
  let admitted = 0;
  const until10s = performance.now() + 10_000;
  await Promise.all(
    gateways.map(async (g) => {
      while (performance.now() < until10s) {
        if ((await call(g, '/v1/models', tenant)).status === 200) admitted++;
        await sleep(10);
      }
    }),
  );
  const end = await bucket(tenant, 'requests');
  const rate = TIERS.refill.requests.perMinute;
  const refilled = (rate * (end.t - start.t)) / UNIT;
  assert.ok(end.t - start.t >= 9_900_000, `a window of about 10 s: ${(end.t - start.t) / 1e6} s`);
  assert.equal(admitted * UNIT, start.level + rate * (end.t - start.t) - end.level, 'conservation, to the unit');
  assert.ok(Math.abs(admitted - refilled) <= 1, `${admitted} admitted, ${refilled.toFixed(2)} refilled at ${rate}/min`);
});

test('refunds: an early stop returns the unused reservation; a cancelled answer returns its completion reservation', async () => {
  const tenant = 'refund';
  const remaining = async (g: GatewayProcess) => Number((await call(g, '/v1/models', tenant)).headers['x-ratelimit-remaining-tokens']);
  const content = '借钱不还怎么办';
  const messages = [{ role: 'user' as const, content }];
  const reserved = UPPER_BOUND_COUNTER.chat(messages.map((m) => ({ ...m, metadata: '' }))) + 500;

  // Early stop: 9 of 500 tokens. The refund is settled on gateway 0 and seen through gateway 1.
  const r = await call(gateways[0]!, '/v1/chat', tenant, { messages, max_tokens: 500 });
  assert.equal(r.status, 200);
  const usage = JSON.parse(r.body).usage as { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  assert.equal(usage.completion_tokens, 9);
  assert.ok(await until(async () => (await remaining(gateways[1]!)) === 2000 - usage.total_tokens, 2000, 50), 'only what was used stays taken');
  assert.ok(usage.total_tokens < reserved);

  // Cancelled before the first token: everything comes back.
  await worker.script({ ttftMs: 3000 });
  try {
    const controller = new AbortController();
    const pending = request(`${gateways[2]!.url}/v1/chat`, {
      dispatcher: agent,
      method: 'POST',
      headers: { ...bearer(tenant), 'content-type': 'application/json' },
      body: JSON.stringify({ messages, max_tokens: 500 }),
      signal: controller.signal,
    }).catch(() => null);
    assert.ok(await until(async () => (await worker.stats()).active === 1, 2000, 10));
    assert.equal(await remaining(gateways[3]!), 2000 - usage.total_tokens - reserved, 'reserved while it runs');
    controller.abort();
    await pending;
    assert.ok(await until(async () => (await remaining(gateways[3]!)) === 2000 - usage.total_tokens, 2000, 50), 'the whole reservation came back');
  } finally {
    await worker.script({ ttftMs: 0 });
  }

  // Cancelled mid-stream: what was generated stays taken, the rest of the completion comes back.
  await worker.script({ tokenDelayMs: 300 });
  try {
    const controller = new AbortController();
    const res = await request(`${gateways[2]!.url}/v1/chat`, {
      dispatcher: agent,
      method: 'POST',
      headers: { ...bearer(tenant), 'content-type': 'application/json' },
      body: JSON.stringify({ messages, max_tokens: 500, stream: true }),
      signal: controller.signal,
    });
    let seen = '';
    for await (const chunk of res.body) {
      seen += chunk.toString();
      if (seen.split('data: ').length > 3) break; // two events in
    }
    controller.abort();
    await res.body.dump().catch(() => {});
    const before = 2000 - usage.total_tokens;
    assert.ok(
      await until(async () => {
        const now = await remaining(gateways[1]!);
        const kept = before - now;
        return kept > usage.prompt_tokens && kept < usage.prompt_tokens + 9;
      }, 3000, 50),
      'the prompt and the tokens generated stay taken; the rest of the 500 came back',
    );
  } finally {
    await worker.script({ tokenDelayMs: 0 });
  }
});

test('outage, local policy: Redis killed under load; limits hold per replica, no request slower by 100 ms, shared buckets back within 5 s', async () => {
  const tenant = 'outage';
  const results: { phase: 'before' | 'outage' | 'after'; status: number; ms: number }[] = [];
  let phase: 'before' | 'outage' | 'after' = 'before';
  let running = true;
  // Four loops, one per replica: enough to keep every bucket short, not so many that the
  // machine's own scheduling noise swamps the 100 ms bound.
  const load = Promise.all(
    Array.from({ length: 4 }, async (_, i) => {
      while (running) {
        const r = await call(gateways[i % 4]!, '/v1/chat', tenant, { messages: [{ role: 'user', content: '合同' }], max_tokens: 8 });
        results.push({ phase, status: r.status, ms: r.ms });
      }
    }),
  );
  await sleep(3000);
  // Decisions made in Redis, admitted or refused: the load keeps the bucket short, so in the
  // moment after the outage a replica may well admit nothing, but it decides.
  const redisBefore = await Promise.all(gateways.map((g) => metric(g, /^gateway_ratelimit_duration_seconds_count\{.*source="redis"/)));
  phase = 'outage';
  await redis.stop();
  await sleep(2000);
  await redis.start();
  const back = performance.now();
  phase = 'after';
  const modes = async () => Promise.all(gateways.map((g) => metric(g, /^gateway_ratelimit_mode\{mode="redis"/)));
  const recovered = await until(async () => (await modes()).every((m) => m === 1), 5000, 50);
  const recoveredMs = performance.now() - back;
  // A moment of load after the recovery, so that every replica has decided something since.
  await sleep(500);
  running = false;
  await load;

  assert.ok(recovered, 'every replica uses Redis again');
  assert.ok(recoveredMs < 5000, `within 5 s (${recoveredMs.toFixed(0)} ms)`);
  const redisAfter = await Promise.all(gateways.map((g) => metric(g, /^gateway_ratelimit_duration_seconds_count\{.*source="redis"/)));
  assert.ok(redisAfter.every((n, i) => n > redisBefore[i]!), 'every replica decided in Redis after the outage');

  const during = results.filter((r) => r.phase === 'outage');
  assert.ok(during.length > 20, `load went on (${during.length} requests in the outage)`);
  assert.ok(during.every((r) => r.status === 200 || r.status === 429), `only answers and refusals: ${[...new Set(during.map((r) => r.status))]}`);
  assert.ok(during.some((r) => r.status === 200), 'the service kept answering');
  assert.ok(during.some((r) => r.status === 429), 'and kept limiting');
  // 4 replicas × (5 at once + 2.5 a second for the 2 s outage and a little more)
  assert.ok(during.filter((r) => r.status === 200).length <= 4 * (5 + 2.5 * 3), 'within the local shares');
  const local = await Promise.all(gateways.map((g) => metric(g, /^gateway_ratelimit_duration_seconds_count\{.*source="local"/)));
  assert.ok(local.every((n) => n > 0), `every replica decided locally in the outage: ${local.join(', ')}`);
  // End to end: no request in the outage slower than the slowest outside it by 100 ms.
  const outside = results.filter((r) => r.phase !== 'outage');
  const slowestOutside = Math.max(...outside.map((r) => r.ms));
  const slowestDuring = Math.max(...during.map((r) => r.ms));
  assert.ok(slowestDuring < slowestOutside + 100, `slowest request ${slowestDuring.toFixed(1)} ms in the outage, ${slowestOutside.toFixed(1)} ms outside it`);
});

test('outage, fail-closed: 503 REDIS_UNAVAILABLE with Retry-After, then shared buckets again within 5 s', async (ctx) => {
  const closed = await startGatewayProcess(env({ GATEWAY_LIMITS_OUTAGE_POLICY: 'fail-closed' }));
  ctx.after(() => closed.stop());
  assert.equal((await call(closed, '/v1/models', 'outage')).status, 200);
  await redis.stop();
  const refused = await call(closed, '/v1/models', 'outage');
  assert.equal(refused.status, 503);
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(JSON.parse(refused.body).error.code, 'redis_unavailable');
  assert.ok(refused.ms < 2000, `refused at once, not after the command timeout of 10 s (${refused.ms.toFixed(1)} ms)`);
  await redis.start();
  const back = performance.now();
  assert.ok(await until(async () => (await call(closed, '/v1/models', 'outage')).status === 200, 5000, 50), 'admitted again');
  assert.ok(performance.now() - back < 5000);
});
