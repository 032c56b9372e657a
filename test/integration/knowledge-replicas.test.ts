/**
 * Live knowledge across gateway replicas: two gateway processes on one private Redis and the
 * protocol-level fake worker. An entry added on one replica is used by the other within a second
 * and gone from both after a delete; additions and deletions survive a restart of every gateway.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { KB_FIXTURE, TEST_ADMIN_TOKEN, TEST_KEY, until } from '../helpers/gateway.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';

let redis: PrivateRedis;
let worker: FakeWorker;
let gateways: GatewayProcess[] = [];

const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
const user = { authorization: `Bearer ${TEST_KEY}` };

function env(): Record<string, string> {
  return {
    GATEWAY_REDIS_URL: redis.url,
    // Generous: a busy two-core machine may hold a reply longer than the default 100 ms.
    GATEWAY_REDIS_COMMAND_TIMEOUT_MS: '5000',
    GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: sha256Hex(TEST_KEY), tenant: 'tenant-a', tier: 'pro' }]),
    GATEWAY_AUTH_ADMIN_TOKEN_SHA256: sha256Hex(TEST_ADMIN_TOKEN),
    GATEWAY_WORKERS_URLS: worker.url,
    GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '100',
    GATEWAY_KNOWLEDGE_BASE_PATH: KB_FIXTURE,
    GATEWAY_KNOWLEDGE_MIN_SCORE: '1',
  };
}

const startAll = () => Promise.all([0, 1].map(() => startGatewayProcess(env())));

before(async () => {
  redis = await startPrivateRedis();
  worker = await startFakeWorker();
  gateways = await startAll();
});
after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await worker.stop();
  await redis.stop();
});

async function call(g: GatewayProcess, method: string, path: string, body?: unknown, headers: Record<string, string> = admin) {
  const res = await fetch(`${g.url}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

/** The ids a gateway finds for a question (its own index, read through the admin search). */
async function found(g: GatewayProcess, q: string): Promise<string[]> {
  const res = await call(g, 'GET', `/admin/knowledge?q=${encodeURIComponent(q)}&limit=5`);
  return (res.body.entries as { id: string }[]).map((e) => e.id);
}

/** The sources of a knowledge answer, and what the worker was sent. */
async function ask(g: GatewayProcess, question: string) {
  const res = await call(g, 'POST', '/v1/chat', { messages: [{ role: 'user', content: question }], knowledge: true }, user);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const last = (await worker.stats()).last as { messages: { role: string; content: string }[] };
  return { sources: (res.body.sources as { id: string }[]).map((s) => s.id), header: res.headers.get('x-knowledge-sources'), prompt: last.messages };
}

const DOG = { id: 'dog-bite-1', question: '宠物狗咬伤路人谁负责', answer: '动物饲养人或者管理人应当承担侵权责任。', source: '《民法典》第一千二百四十五条' };
const DOG_QUESTION = '被宠物狗咬伤了谁负责';

test('an entry added on one replica is used by the other within a second, and gone from both after a delete', async () => {
  const [g1, g2] = gateways as [GatewayProcess, GatewayProcess];
  assert.ok(await until(async () => (await call(g1, 'GET', '/readyz', undefined, {})).status === 200, 10_000));
  assert.ok(!(await found(g2, DOG_QUESTION)).includes(DOG.id));

  const added = await call(g1, 'POST', '/admin/knowledge', { entries: [DOG] });
  const t0 = performance.now();
  assert.equal(added.status, 201, JSON.stringify(added.body));
  assert.equal(added.body.store, 'redis');
  assert.ok(await until(async () => (await found(g2, DOG_QUESTION))[0] === DOG.id, 1000, 5), 'the other replica has it');
  const seenAfter = performance.now() - t0;
  assert.ok(seenAfter < 1000, `${seenAfter} ms`);

  const answer = await ask(g2, DOG_QUESTION);
  assert.equal(answer.sources[0], DOG.id);
  assert.equal(answer.header, answer.sources.join(','));
  assert.equal(answer.prompt[0]!.role, 'system');
  assert.ok(answer.prompt[0]!.content.includes(`[${DOG.id}]\n问：${DOG.question}\n答：${DOG.answer}\n来源：${DOG.source}`));

  const deleted = await call(g2, 'DELETE', `/admin/knowledge/${DOG.id}`);
  const t1 = performance.now();
  assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
  assert.ok(await until(async () => !(await found(g1, DOG_QUESTION)).includes(DOG.id), 1000, 5), 'gone from the first replica');
  assert.ok(performance.now() - t1 < 1000);
  assert.ok(!(await found(g2, DOG_QUESTION)).includes(DOG.id), 'and from the second');
  for (const g of [g1, g2]) {
    const after = await ask(g, DOG_QUESTION);
    assert.ok(!after.sources.includes(DOG.id));
    assert.ok(!after.prompt.some((m) => m.content.includes(`[${DOG.id}]`)), 'nor in the prompt');
  }
});

test('additions and deletions survive a restart of every gateway', async () => {
  const [g1, g2] = gateways as [GatewayProcess, GatewayProcess];
  const kept = { id: 'noise-1', question: '邻居装修噪音扰民怎么办', answer: '可以向物业反映，或者报警。' };
  assert.equal((await call(g1, 'POST', '/admin/knowledge', { entries: [kept] })).status, 201);
  assert.equal((await call(g2, 'DELETE', '/admin/knowledge/kb-5')).status, 200, 'a file entry');
  assert.ok(await until(async () => (await found(g2, '装修噪音'))[0] === 'noise-1', 1000, 5));

  await Promise.all(gateways.map((g) => g.stop()));
  gateways = await startAll();
  for (const g of gateways) {
    assert.equal((await found(g, '装修噪音'))[0], 'noise-1', 'the addition is back');
    assert.ok(!(await found(g, '房东不退押金')).includes('kb-5'), 'the deleted file entry stays deleted');
    const size = (await call(g, 'GET', '/admin/knowledge')).body.size;
    assert.equal(size, 10, 'ten file entries, one deleted, one added');
  }
  assert.equal((await ask(gateways[1]!, '邻居装修噪音扰民')).sources[0], 'noise-1');
});
