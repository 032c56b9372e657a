/**
 * Knowledge in the prompt and the live knowledge base, on gateways built in the test (inject),
 * the protocol-level fake worker as a real process, and a private redis-server of this file.
 * The fake worker counts a prompt token per character of the messages it receives, so the
 * knowledge turn's length is what `prompt_tokens` must grow by.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { knowledgeKeys } from '../../src/gateway/fallback/live-knowledge.js';
import { UPPER_BOUND_COUNTER } from '../../src/gateway/limiter/prompt-tokens.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { admin, auth, build, sseData, testGateway, until } from '../helpers/gateway.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';

let worker: FakeWorker;
let redis: PrivateRedis;
let look: Redis;

before(async () => {
  worker = await startFakeWorker();
  redis = await startPrivateRedis();
  look = new Redis(redis.url, { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
  look.on('error', () => {});
});
after(async () => {
  look.disconnect();
  await redis.stop();
  await worker.stop();
});

let prefixes = 0;
const uniquePrefix = () => `test-knowledge-${process.pid}-${++prefixes}:`;

type Over = Parameters<typeof testGateway>[0];

/** A gateway on the fake worker; with a key prefix, on this file's Redis. */
async function gateway(t: Parameters<typeof build>[0], keyPrefix?: string, over: Over = {}): Promise<FastifyInstance> {
  const app = await build(
    t,
    { workers: { urls: [worker.url] }, knowledge: { minScore: 1, refreshMs: 200 }, ...(keyPrefix ? { redis: { url: redis.url, keyPrefix } } : {}), ...over },
    keyPrefix ? { redis: undefined } : {},
  );
  assert.ok(await until(() => app.pool.healthyCount() > 0, 5000), 'the worker is healthy');
  return app;
}

interface Message {
  role: string;
  content: string;
}

async function lastMessages(): Promise<Message[]> {
  return ((await worker.stats()).last as { messages: Message[] }).messages;
}

const DEPOSIT = '房东不退押金怎么办';
const chat = (content: string, extra: object = {}) => ({ messages: [{ role: 'user', content }], ...extra });
const completions = (content: string, extra: object = {}) => ({ model: 'chatglm3-6b', messages: [{ role: 'user', content }], ...extra });

function post(app: FastifyInstance, url: string, payload: unknown, headers: Record<string, string> = auth) {
  return app.inject({ method: 'POST', url, headers, payload: payload as object });
}

test('the augmented prompt holds the entry on both routes, streamed and not; prompt_tokens grows by the turn; sources are named', async (t) => {
  const app = await gateway(t);
  const plain = await post(app, '/v1/chat', chat(DEPOSIT));
  assert.equal(plain.statusCode, 200, plain.body);
  assert.equal(plain.json().sources, undefined, 'not asked: no sources field');
  assert.equal(plain.headers['x-knowledge-sources'], undefined);
  assert.deepEqual(await lastMessages(), [{ role: 'user', content: DEPOSIT }]);
  const plainTokens = plain.json().usage.prompt_tokens as number;

  const cases = [
    { url: '/v1/chat', body: chat(DEPOSIT, { knowledge: true }), stream: false },
    { url: '/v1/chat', body: chat(DEPOSIT, { knowledge: { top_k: 2 }, stream: true }), stream: true },
    { url: '/v1/chat/completions', body: completions(DEPOSIT, { knowledge: true }), stream: false },
    { url: '/v1/chat/completions', body: completions(DEPOSIT, { knowledge: { top_k: 2, min_score: 1 }, stream: true, stream_options: { include_usage: true } }), stream: true },
  ];
  for (const c of cases) {
    const res = await post(app, c.url, c.body);
    assert.equal(res.statusCode, 200, res.body);
    const messages = await lastMessages();
    assert.equal(messages.length, 2, `${c.url} stream ${c.stream}`);
    assert.equal(messages[0]!.role, 'system');
    assert.deepEqual(messages[1], { role: 'user', content: DEPOSIT });
    let sources: { id: string; question: string; score: number }[];
    let promptTokens: number;
    if (!c.stream) {
      sources = res.json().sources;
      promptTokens = res.json().usage.prompt_tokens;
    } else {
      const events = sseData(res.body) as Record<string, unknown>[];
      sources = events[0]!.sources as typeof sources;
      assert.ok(events.slice(1).every((e) => typeof e !== 'object' || !('sources' in e)), 'only the first chunk has them');
      const usage = events.find((e) => typeof e === 'object' && e.usage) as { usage: { prompt_tokens: number } };
      promptTokens = usage.usage.prompt_tokens;
      if (c.url === '/v1/chat') assert.equal(events[0]!.delta, '', 'the first /v1/chat chunk carries no text');
      else assert.deepEqual((events[0]!.choices as { delta: object }[])[0]!.delta, { role: 'assistant', content: '' });
    }
    assert.ok(sources.length >= 1, `${c.url}: ${JSON.stringify(sources)}`);
    assert.equal(sources[0]!.id, 'kb-5');
    assert.equal(sources[0]!.question, '租房押金房东不退怎么办');
    assert.ok(sources[0]!.score >= 1);
    for (const s of sources) assert.ok(messages[0]!.content.includes(`[${s.id}]\n问：${s.question}`), `${s.id} is in the prompt`);
    assert.equal(res.headers['x-knowledge-sources'], sources.map((s) => s.id).join(','));
    assert.equal(promptTokens, plainTokens + messages[0]!.content.length, 'the worker counted the turn');
  }
});

test('no entry above min_score: nothing is added, sources are empty', async (t) => {
  const app = await gateway(t);
  for (const [url, body] of [
    ['/v1/chat', chat('xyzzy plugh', { knowledge: true })],
    ['/v1/chat/completions', completions(DEPOSIT, { knowledge: { min_score: 100_000 } })],
  ] as const) {
    const res = await post(app, url, body);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().sources, []);
    assert.equal(res.headers['x-knowledge-sources'], '');
    assert.equal((await lastMessages()).length, 1, 'the worker got the question alone');
  }
});

test('GATEWAY_KNOWLEDGE_AUGMENT=on augments requests that do not say, and knowledge: false opts out', async (t) => {
  const app = await gateway(t, undefined, { knowledge: { augment: 'on', minScore: 1 } });
  const on = await post(app, '/v1/chat', chat(DEPOSIT));
  assert.equal(on.json().sources[0].id, 'kb-5');
  assert.equal((await lastMessages()).length, 2);
  const off = await post(app, '/v1/chat/completions', completions(DEPOSIT, { knowledge: false }));
  assert.equal(off.json().sources, undefined);
  assert.equal((await lastMessages()).length, 1);
  const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  assert.match(metrics, /^gateway_knowledge_augmentations_total\{result="added"[^}]*\} 1$/m);
  assert.match(metrics, /^gateway_knowledge_entries\S* 10$/m);
});

test('the token budget counts the knowledge turn', async (t) => {
  const burst = 300;
  const app = await gateway(t, undefined, {
    limits: { tiers: { pro: { requests: { perMinute: 1000, burst: 1000 }, tokens: { perMinute: burst, burst } }, anonymous: { requests: { perMinute: 1, burst: 1 }, tokens: { perMinute: 1, burst: 1 } } } },
  });
  // Without the gateway's own tokenizer, prompts are counted by the upper bound.
  const bare = UPPER_BOUND_COUNTER.chat([{ role: 'user', metadata: '', content: DEPOSIT }]);
  const maxTokens = burst - bare - 10;
  const plain = await post(app, '/v1/chat', chat(DEPOSIT, { max_tokens: maxTokens }));
  assert.equal(plain.statusCode, 200, plain.body);
  const augmented = await post(app, '/v1/chat', chat(DEPOSIT, { max_tokens: maxTokens, knowledge: true }));
  assert.equal(augmented.statusCode, 400, augmented.body);
  assert.equal(augmented.json().error.code, 'token_budget_exceeded');
  const inPrompt = Number(/(\d+) in the prompt/.exec(augmented.json().error.message)![1]);
  assert.ok(inPrompt > bare + 100, `${inPrompt} prompt tokens counted, ${bare} without the turn`);
});

test('a degraded answer names the entry it answered from, or no source for a canned text', async (t) => {
  const app = await gateway(t);
  const put = await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced' } });
  assert.equal(put.statusCode, 200);
  const kb = await post(app, '/v1/chat', chat(DEPOSIT, { knowledge: true }));
  assert.equal(kb.json().degraded.source, 'kb');
  assert.deepEqual(kb.json().sources.map((s: { id: string }) => s.id), [kb.json().degraded.entry_id]);
  assert.equal(kb.headers['x-knowledge-sources'], kb.json().degraded.entry_id);
  const stream = await post(app, '/v1/chat/completions', completions(DEPOSIT, { knowledge: true, stream: true }));
  const first = sseData(stream.body)[0] as { sources: { id: string }[] };
  assert.equal(first.sources[0]!.id, 'kb-5');
  const canned = await post(app, '/v1/chat', chat('xyzzy plugh', { knowledge: true }));
  assert.equal(canned.json().degraded.source, 'canned');
  assert.deepEqual(canned.json().sources, []);
  assert.equal((await post(app, '/v1/chat', chat(DEPOSIT))).json().sources, undefined);
});

const entry = { question: '宠物狗咬伤路人谁负责', detail: '狗没拴绳', answer: '动物饲养人或者管理人应当承担侵权责任。', source: '《民法典》第一千二百四十五条' };

test('entries added, searched and deleted through the admin API are used at once and kept in Redis', async (t) => {
  const prefix = uniquePrefix();
  const keys = knowledgeKeys(prefix);
  const app = await gateway(t, prefix);
  assert.equal(app.knowledge.store, 'redis');

  const added = await post(app, '/admin/knowledge', { entries: [{ id: 'dog-1', ...entry }] }, admin);
  assert.equal(added.statusCode, 201, added.body);
  assert.deepEqual(added.json(), { ids: ['dog-1'], size: 11, store: 'redis' });
  assert.equal(JSON.parse((await look.hget(keys.entries, 'dog-1'))!).reply, entry.answer);
  const used = await post(app, '/v1/chat', chat('狗咬人谁负责', { knowledge: true }));
  assert.equal(used.json().sources[0].id, 'dog-1');
  assert.match((await lastMessages())[0]!.content, /\[dog-1\]\n问：宠物狗咬伤路人谁负责\n补充：狗没拴绳\n答：动物饲养人.*\n来源：《民法典》第一千二百四十五条/);

  const csv = await app.inject({
    method: 'POST',
    url: '/admin/knowledge',
    headers: { ...admin, 'content-type': 'text/csv; charset=utf-8' },
    payload: 'title,question,reply\n高空抛物砸坏汽车谁赔,楼上扔花盆,由侵权人承担责任；查不清的由可能加害的建筑物使用人补偿。\n',
  });
  assert.equal(csv.statusCode, 201, csv.body);
  const [csvId] = csv.json().ids as string[];
  assert.match(csvId!, /^lz-[0-9a-f]{12}$/);
  const search = await app.inject({ method: 'GET', url: `/admin/knowledge?q=${encodeURIComponent('高空抛物')}&limit=3`, headers: admin });
  assert.equal(search.statusCode, 200);
  assert.equal(search.json().entries[0].id, csvId);
  assert.equal(search.json().entries[0].detail, '楼上扔花盆');
  assert.ok(search.json().entries[0].score > 0);
  const several = (await app.inject({ method: 'GET', url: `/admin/knowledge?q=${encodeURIComponent('怎么办')}&limit=5`, headers: admin })).json();
  const scores = several.entries.map((e: { score: number }) => e.score) as number[];
  assert.ok(scores.length >= 2, JSON.stringify(several));
  for (let i = 1; i < scores.length; i++) assert.ok(scores[i - 1]! >= scores[i]!, `best first: ${scores}`);
  const latest = await app.inject({ method: 'GET', url: '/admin/knowledge?limit=2', headers: admin });
  assert.deepEqual(latest.json().entries.map((e: { id: string }) => e.id), [csvId, 'dog-1']);
  assert.equal(latest.json().size, 12);

  // A file entry deleted stays deleted: the tombstone is in Redis.
  const del = await app.inject({ method: 'DELETE', url: '/admin/knowledge/kb-5', headers: admin });
  assert.equal(del.statusCode, 200, del.body);
  assert.deepEqual(del.json(), { id: 'kb-5', deleted: true, size: 11, store: 'redis' });
  assert.equal(await look.hget(keys.entries, 'kb-5'), '{"deleted":true}');
  const after = await post(app, '/v1/chat', chat(DEPOSIT, { knowledge: true }));
  assert.ok(!after.json().sources.some((s: { id: string }) => s.id === 'kb-5'));
  assert.equal((await app.inject({ method: 'DELETE', url: '/admin/knowledge/kb-5', headers: admin })).statusCode, 404);
  const badId = await app.inject({ method: 'DELETE', url: '/admin/knowledge/..%2F..%2Fetc', headers: admin });
  assert.equal(badId.statusCode, 400);
  assert.equal(badId.json().error.param, 'id');
  // Replacing keeps one entry under the id.
  const replaced = await post(app, '/admin/knowledge', { entries: [{ id: 'dog-1', question: '狗咬人怎么赔偿', answer: '赔医疗费。' }] }, admin);
  assert.equal(replaced.json().size, 11);
  assert.equal(app.knowledge.kb.get('dog-1')!.reply, '赔医疗费。');
  assert.equal(await look.get(keys.version), '4');
});

test('a bad entry is refused with its field and index, and nothing of its request is applied', async (t) => {
  const prefix = uniquePrefix();
  const keys = knowledgeKeys(prefix);
  const app = await gateway(t, prefix);
  const good = (i: number) => ({ id: `good-${i}`, question: `劳动仲裁第${i}问`, answer: '向仲裁委申请。' });
  const cases: Array<[object, string, string]> = [
    [{ entries: [good(1), good(2), good(3), { question: '没有答案' }] }, 'entries.3.answer', 'invalid_request'],
    [{ entries: [good(1), { ...good(2), answer: 'x\u0007' }] }, 'entries.1.answer', 'invalid_request'],
    [{ entries: [good(1), { ...good(1), answer: '另一个答案' }] }, 'entries.1.id', 'invalid_request'],
    [{ entries: [good(1), { ...good(2), id: 'bad id' }] }, 'entries.1.id', 'invalid_request'],
    [{ entries: [good(1), { ...good(2), answer: '长'.repeat(1_000_000) }] }, 'entries.1.answer', 'invalid_request'],
    [{ entries: Array.from({ length: 10_000 }, (_, i) => good(i)) }, 'entries', 'invalid_request'],
  ];
  for (const [body, param, code] of cases) {
    const res = await post(app, '/admin/knowledge', body, admin);
    assert.equal(res.statusCode, 400, res.body.slice(0, 200));
    assert.equal(res.json().error.param, param);
    assert.equal(res.json().error.code, code);
    assert.match(res.json().error.message, new RegExp(param.replace(/\./g, '\\.')));
  }
  const csv = await app.inject({
    method: 'POST',
    url: '/admin/knowledge',
    headers: { ...admin, 'content-type': 'text/csv' },
    payload: 'title,reply\n好问题,好答案\n"多行\n的问题",\n',
  });
  assert.equal(csv.statusCode, 400);
  assert.equal(csv.json().error.param, 'entries.1.answer');
  assert.match(csv.json().error.message, /CSV line 3/);
  assert.equal(app.knowledge.kb.size, 10, 'nothing was added');
  assert.equal(app.knowledge.kb.get('good-1'), undefined);
  assert.equal(await look.exists(keys.entries, keys.version), 0, 'nothing reached Redis');
});

test('hostile text is stored as text, never interpreted; bodies past the bounds are refused', async (t) => {
  const app = await gateway(t, uniquePrefix(), { knowledge: { adminBodyLimitBytes: 256 * 1024 } });
  const html = { id: 'html-1', question: '<img src=x onerror=alert(1)>遗嘱怎么写', answer: '<script>alert("x")</script>自书遗嘱须亲笔书写、签名、注明年月日。' };
  const res = await post(app, '/admin/knowledge', { entries: [html] }, admin);
  assert.equal(res.statusCode, 201, res.body);
  const got = await app.inject({ method: 'GET', url: `/admin/knowledge?q=${encodeURIComponent('遗嘱怎么写')}`, headers: admin });
  assert.match(String(got.headers['content-type']), /^application\/json/);
  assert.equal(got.json().entries[0].answer, html.answer);
  const answer = await post(app, '/v1/chat', chat('遗嘱怎么写', { knowledge: { min_score: 1 } }));
  assert.equal(answer.headers['x-knowledge-sources'], answer.json().sources.map((s: { id: string }) => s.id).join(','));
  assert.ok((await lastMessages())[0]!.content.includes(html.answer), 'the model gets the text as it was sent');
  const big = await post(app, '/admin/knowledge', { entries: [{ question: '大', answer: '长'.repeat(200_000) }] }, admin);
  assert.equal(big.statusCode, 413);
  assert.equal(big.json().error.code, 'payload_too_large');
});

test('garbage bodies get their own 4xx, and the admin token is required', async (t) => {
  const app = await gateway(t, uniquePrefix());
  const json = { ...admin, 'content-type': 'application/json' };
  const csv = { ...admin, 'content-type': 'text/csv' };
  const cases: Array<[Record<string, string>, string | Buffer, number, string]> = [
    [json, '{"entries": [', 400, 'invalid_json'],
    [json, '', 400, 'invalid_json'],
    [json, '[]', 400, 'invalid_request'],
    [json, '"entries"', 400, 'invalid_request'],
    [json, '{"entries": "all"}', 400, 'invalid_request'],
    [json, '{"__proto__": {"x": 1}, "entries": []}', 400, 'invalid_json'],
    [json, Buffer.from([0xff, 0xfe, 0x00, 0x01]), 400, 'invalid_json'],
    [csv, '', 400, 'invalid_data'],
    [csv, 'just some words', 400, 'invalid_data'],
    [csv, 'title,reply\na,b,c,d\n', 400, 'invalid_data'],
    [csv, Buffer.from([0xff, 0xfe, 0x74, 0x00, 0x69, 0x00]), 400, 'invalid_data'],
    [csv, Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 31) % 256)), 400, 'invalid_data'],
    [{ ...admin, 'content-type': 'text/plain' }, 'title,reply\na,b\n', 415, 'unsupported_media_type'],
    [{ ...admin, 'content-type': 'application/x-www-form-urlencoded' }, 'entries=1', 415, 'unsupported_media_type'],
  ];
  for (const [headers, payload, status, code] of cases) {
    const res = await app.inject({ method: 'POST', url: '/admin/knowledge', headers, payload });
    assert.equal(res.statusCode, status, `${headers['content-type']} ${String(payload).slice(0, 30)}: ${res.body.slice(0, 200)}`);
    assert.equal(res.json().error.code, code);
  }
  // CSV is parsed on the knowledge routes only.
  const chatCsv = await app.inject({ method: 'POST', url: '/v1/chat', headers: { ...auth, 'content-type': 'text/csv' }, payload: 'title,reply\na,b\n' });
  assert.equal(chatCsv.statusCode, 415);
  for (const headers of [{}, auth, { authorization: 'Bearer wrong-admin-token' }]) {
    const res = await app.inject({ method: 'POST', url: '/admin/knowledge', headers, payload: { entries: [entry] } });
    assert.equal(res.statusCode, 401);
    assert.equal((await app.inject({ method: 'GET', url: '/admin/knowledge', headers })).statusCode, 401);
    assert.equal((await app.inject({ method: 'DELETE', url: '/admin/knowledge/kb-1', headers })).statusCode, 401);
  }
  for (const query of ['limit=0', 'limit=51', 'limit=x', 'q=' + 'x'.repeat(1001), 'extra=1']) {
    assert.equal((await app.inject({ method: 'GET', url: `/admin/knowledge?${query}`, headers: admin })).statusCode, 400, query);
  }
  assert.equal(app.knowledge.kb.size, 10);
});

test('without Redis a change applies to this process only, and the answer says so', async (t) => {
  const app = await gateway(t);
  const res = await post(app, '/admin/knowledge', { entries: [entry] }, admin);
  assert.equal(res.statusCode, 201);
  assert.equal(res.json().store, 'memory');
  assert.match(res.json().warning, /this gateway process only/);
  assert.equal((await post(app, '/v1/chat', chat('狗咬人谁负责', { knowledge: true }))).json().sources[0].id, res.json().ids[0]);
  const del = await app.inject({ method: 'DELETE', url: `/admin/knowledge/${res.json().ids[0]}`, headers: admin });
  assert.equal(del.json().store, 'memory');
  const get = await app.inject({ method: 'GET', url: '/admin/knowledge', headers: admin });
  assert.equal(get.json().store, 'memory');
});

test('changes reach replicas when a message is lost, after the log was trimmed, and revert when Redis is emptied', async (t) => {
  const prefix = uniquePrefix();
  const keys = knowledgeKeys(prefix);
  const g1 = await gateway(t, prefix, { knowledge: { minScore: 1, refreshMs: 200, logLength: 10 } });
  // Written as the write script would, without the announcement: only the periodic re-read finds it.
  const silent = { id: 'silent-1', title: '物业停水停电合法吗', question: '', reply: '不得以停水停电催交物业费。' };
  await look.hset(keys.entries, silent.id, JSON.stringify(silent));
  await look.rpush(keys.log, JSON.stringify({ v: 1, ids: [silent.id] }));
  await look.set(keys.version, '1');
  const t0 = performance.now();
  assert.ok(await until(() => g1.knowledge.kb.get('silent-1') !== undefined, 1000, 5), 'the re-read applies it');
  assert.ok(performance.now() - t0 < 1000);
  // Garbage in the hash is ignored, not applied.
  await look.hset(keys.entries, 'junk', '{"id":"junk"');
  await look.rpush(keys.log, JSON.stringify({ v: 2, ids: ['junk'] }));
  await look.set(keys.version, '2');
  assert.ok(await until(() => g1.knowledge.version === 2, 1000, 5));
  assert.equal(g1.knowledge.kb.get('junk'), undefined);

  // Thirty changes with a log of ten: a replica starting now cannot read the log from the start.
  for (let i = 0; i < 30; i++) {
    assert.equal((await post(g1, '/admin/knowledge', { entries: [{ id: `bulk-${i}`, question: `合同纠纷第${i}问`, answer: `答${i}` }] }, admin)).statusCode, 201);
  }
  assert.equal(await look.llen(keys.log), 10);
  const g2 = await gateway(t, prefix, { knowledge: { minScore: 1, refreshMs: 200, logLength: 10 } });
  for (let i = 0; i < 30; i++) assert.equal(g2.knowledge.kb.get(`bulk-${i}`)?.reply, `答${i}`, `bulk-${i}`);
  assert.ok(g2.knowledge.kb.get('silent-1'));
  assert.equal(g2.knowledge.kb.size, 10 + 31);

  // Redis emptied (a new instance): both go back to the file.
  await look.del(keys.entries, keys.version, keys.log);
  await look.publish(keys.channel, '0');
  assert.ok(await until(() => g1.knowledge.kb.size === 10 && g2.knowledge.kb.size === 10, 1000, 5), `${g1.knowledge.kb.size} ${g2.knowledge.kb.size}`);
  assert.equal(g1.knowledge.kb.get('bulk-0'), undefined);
  assert.ok(g1.knowledge.kb.get('kb-5'));
});

test('a change made while Redis is down holds on that replica, and is shared once Redis is back', async (t) => {
  const own = await startPrivateRedis();
  t.after(() => own.stop());
  const prefix = uniquePrefix();
  const over = { redis: { url: own.url, keyPrefix: prefix }, knowledge: { minScore: 1, refreshMs: 100 } };
  const g1 = await build(t, { workers: { urls: [worker.url] }, ...over }, { redis: undefined });
  const g2 = await build(t, { workers: { urls: [worker.url] }, ...over }, { redis: undefined });
  await own.stop();
  assert.ok(await until(() => g1.knowledge.store === 'memory', 3000));
  const res = await post(g1, '/admin/knowledge', { entries: [{ id: 'offline-1', ...entry }] }, admin);
  assert.equal(res.statusCode, 201);
  assert.equal(res.json().store, 'memory');
  assert.match(res.json().warning, /until Redis is back/);
  assert.ok(g1.knowledge.kb.get('offline-1'), 'this replica has it at once');
  assert.equal(g2.knowledge.kb.get('offline-1'), undefined);
  await own.start();
  assert.ok(await until(() => g2.knowledge.kb.get('offline-1') !== undefined, 10_000), 'the other replica has it once Redis is back');
  assert.equal(g1.knowledge.store, 'redis');
});

test('the OpenAPI page documents the knowledge routes and fields from their schemas', async (t) => {
  const app = await gateway(t);
  const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as {
    paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> }; parameters?: { name: string }[] }>>;
  };
  const post = doc.paths['/admin/knowledge']!.post!;
  const body = post.requestBody!.content['application/json']!.schema as unknown as { properties: { entries: { maxItems: number; items: { properties: Record<string, { maxLength?: number }>; required: string[] } } } };
  assert.equal(body.properties.entries.maxItems, 1000);
  assert.deepEqual(Object.keys(body.properties.entries.items.properties).sort(), ['answer', 'detail', 'id', 'question', 'source']);
  assert.deepEqual(body.properties.entries.items.required.sort(), ['answer', 'question']);
  assert.equal(body.properties.entries.items.properties.answer!.maxLength, 20_000);
  assert.deepEqual(doc.paths['/admin/knowledge']!.get!.parameters!.map((p) => p.name).sort(), ['limit', 'q']);
  assert.deepEqual(doc.paths['/admin/knowledge/{id}']!.delete!.parameters!.map((p) => p.name), ['id']);
  for (const route of ['/v1/chat', '/v1/chat/completions']) {
    assert.ok('knowledge' in doc.paths[route]!.post!.requestBody!.content['application/json']!.schema.properties, route);
  }
});
