import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { auth, sseData, testGateway } from '../helpers/gateway.js';

let worker: FakeWorker;
let app: FastifyInstance;

before(async () => {
  worker = await startFakeWorker();
  app = await testGateway({ workers: { urls: [worker.url] } });
});
after(async () => {
  await app.close();
  await worker.stop();
});

const question = [{ role: 'user', content: '朋友借钱不还怎么办？' }];

test('/v1/chat answers from a worker', async () => {
  const res = await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: question, max_tokens: 64 } });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.message.role, 'assistant');
  assert.equal(body.message.content, '根据《民法典》规定，借款应当按期归还。');
  assert.equal(body.finish_reason, 'stop');
  assert.equal(body.degraded, false);
  assert.equal(body.model, 'chatglm3-6b');
  assert.equal(body.usage.completion_tokens, 9);
  assert.equal(body.usage.total_tokens, body.usage.prompt_tokens + 9);
  assert.equal(res.headers['x-degraded'], undefined);
  assert.ok(res.headers['x-request-id']);
});

test('/v1/chat streams server-sent events ending in [DONE]', async () => {
  const res = await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: question, stream: true, max_tokens: 3 } });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/event-stream/);
  const events = sseData(res.body);
  assert.equal(events.at(-1), '[DONE]');
  const deltas = events.filter((e): e is { delta: string } => typeof e === 'object' && e !== null && 'delta' in e);
  assert.deepEqual(deltas.map((d) => d.delta), ['根据', '《民法典》', '规定']);
  const last = events.at(-2) as { finish_reason: string; usage: { completion_tokens: number }; degraded: unknown };
  assert.equal(last.finish_reason, 'length');
  assert.equal(last.usage.completion_tokens, 3);
  assert.equal(last.degraded, false);
});

test('/v1/chat/completions is OpenAI-shaped, streaming and not', async () => {
  const res = await app.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: auth,
    payload: { model: 'chatglm3-6b', messages: question, logprobs: true, top_logprobs: 2 },
  });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.object, 'chat.completion');
  assert.equal(body.choices[0].message.content, '根据《民法典》规定，借款应当按期归还。');
  assert.equal(body.choices[0].finish_reason, 'stop');
  assert.equal(body.choices[0].logprobs.content.length, 9);
  assert.equal(body.choices[0].logprobs.content[0].top_logprobs.length, 2);
  const last = (await worker.stats()).last!;
  assert.equal(last.logprobs, 2);

  const s = await app.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: auth,
    payload: { model: 'law-lora', messages: question, stream: true, stream_options: { include_usage: true } },
  });
  assert.equal(s.statusCode, 200);
  const chunks = sseData(s.body);
  assert.equal(chunks.at(-1), '[DONE]');
  const objs = chunks.slice(0, -1) as Array<{ object: string; choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>; usage: unknown }>;
  assert.equal(objs[0]!.choices[0]!.delta.role, 'assistant');
  assert.ok(objs.every((c) => c.object === 'chat.completion.chunk'));
  const usageChunk = objs.at(-1)!;
  assert.deepEqual(usageChunk.choices, []);
  assert.equal((usageChunk.usage as { completion_tokens: number }).completion_tokens, 9);
  assert.equal(objs.at(-2)!.choices[0]!.finish_reason, 'stop');
  assert.equal((await worker.stats()).last!.adapter, 'law-lora', 'the adapter name in `model` routes to the adapter');
});

test('/v1/completions takes a text prompt or token ids', async () => {
  const res = await app.inject({ method: 'POST', url: '/v1/completions', headers: auth, payload: { model: 'chatglm3-6b', prompt: '借款合同', max_tokens: 2, logprobs: 1 } });
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json();
  assert.equal(body.object, 'text_completion');
  assert.equal(body.choices[0].text, '根据《民法典》');
  assert.equal(body.choices[0].finish_reason, 'length');
  assert.deepEqual(body.choices[0].logprobs.tokens, ['根据', '《民法典》']);
  assert.deepEqual(body.choices[0].logprobs.text_offset, [0, 2]);
  const ids = await app.inject({ method: 'POST', url: '/v1/completions', headers: auth, payload: { model: 'chatglm3-6b', prompt: [64790, 64792, 30910] } });
  assert.equal(ids.statusCode, 200, ids.body);
  assert.deepEqual((await worker.stats()).last!.prompt_ids, [64790, 64792, 30910]);
});

test('/v1/models lists the base model and the adapters the workers report', async () => {
  const res = await app.inject({ method: 'GET', url: '/v1/models', headers: auth });
  assert.equal(res.statusCode, 200);
  const ids = res.json().data.map((m: { id: string }) => m.id);
  assert.deepEqual(ids, ['chatglm3-6b', 'law-lora']);
});

test('worker refusals are relayed as they are: context length and unknown model', async () => {
  const long = await app.inject({
    method: 'POST',
    url: '/v1/chat/completions',
    headers: auth,
    payload: { model: 'chatglm3-6b', messages: [{ role: 'user', content: '法'.repeat(2100) }] },
  });
  assert.equal(long.statusCode, 400);
  assert.equal(long.json().error.code, 'context_length_exceeded');
  const unknown = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: auth, payload: { model: 'gpt-4', messages: question } });
  assert.equal(unknown.statusCode, 404);
  assert.deepEqual(unknown.json().error, { message: 'the model "gpt-4" does not exist', type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
  const adapter = await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: question, adapter: 'nope' } });
  assert.equal(adapter.statusCode, 404);
  assert.equal(adapter.json().error.param, 'adapter');
});

test('no key, a wrong key and a malformed key all get the same 401', async () => {
  const bodies = new Set<string>();
  for (const headers of [{}, { authorization: 'Bearer sk-wrong' }, { authorization: 'Basic abc' }, { 'x-api-key': 'k\u0001ey' }, { authorization: `Bearer ${'x'.repeat(5000)}` }]) {
    const res = await app.inject({ method: 'POST', url: '/v1/chat', headers, payload: { messages: question } });
    assert.equal(res.statusCode, 401);
    bodies.add(res.body);
  }
  assert.equal(bodies.size, 1, 'the answer gives no hint whether a key exists');
  const viaHeader = await app.inject({ method: 'GET', url: '/v1/models', headers: { 'x-api-key': 'sk-test-tenant-a-0123456789' } });
  assert.equal(viaHeader.statusCode, 200);
});

test('the OpenAPI document and the docs page are served', async () => {
  const doc = await app.inject({ method: 'GET', url: '/docs/json' });
  assert.equal(doc.statusCode, 200);
  const paths = Object.keys(doc.json().paths);
  for (const p of ['/v1/chat', '/v1/chat/completions', '/v1/completions', '/v1/models', '/admin/degrade']) assert.ok(paths.includes(p), p);
  assert.equal(doc.json().paths['/v1/chat'].post.requestBody.content['application/json'].schema.properties.messages.type, 'array');
  const page = await app.inject({ method: 'GET', url: '/docs' });
  assert.ok(page.statusCode === 200 || page.statusCode === 302, String(page.statusCode));
});
