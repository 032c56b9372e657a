import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import OpenAI, { APIError, NotFoundError, AuthenticationError } from 'openai';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { TEST_KEY, testGateway } from '../helpers/gateway.js';

let worker: FakeWorker;
let app: FastifyInstance;
let client: OpenAI;

before(async () => {
  worker = await startFakeWorker();
  app = await testGateway({ workers: { urls: [worker.url] } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  client = new OpenAI({ apiKey: TEST_KEY, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
});
after(async () => {
  await app.close();
  await worker.stop();
});

const messages = [
  { role: 'system' as const, content: '你是一名法律助手。' },
  { role: 'user' as const, content: '借钱不还怎么办？' },
];

test('the official openai client: non-streaming', async () => {
  const res = await client.chat.completions.create({ model: 'chatglm3-6b', messages, max_tokens: 32, temperature: 0.2 });
  assert.equal(res.object, 'chat.completion');
  assert.equal(res.choices[0]!.message.content, '根据《民法典》规定，借款应当按期归还。');
  assert.equal(res.choices[0]!.finish_reason, 'stop');
  assert.equal(res.usage!.completion_tokens, 9);
  const sent = (await worker.stats()).last!;
  // The worker learns who asks, for its fair admission: the tenant and tier of the API key.
  assert.equal(sent.tenant, 'tenant-a');
  assert.equal(sent.tier, 'pro');
  assert.equal(sent.temperature, 0.2);
  assert.equal(sent.max_tokens, 32);
});

test('the official openai client: streaming with usage', async () => {
  const stream = await client.chat.completions.create({ model: 'law-lora', messages, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, '根据《民法典》规定，借款应当按期归还。');
  assert.equal(finish, 'stop');
  assert.equal(usage?.total_tokens, usage!.prompt_tokens + 9);
});

test('the official openai client: models, completions and errors', async (ctx) => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['chatglm3-6b', 'law-lora']);
  const c = await client.completions.create({ model: 'chatglm3-6b', prompt: '合同', max_tokens: 2 });
  assert.equal(c.choices[0]!.text, '根据《民法典》');
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages }), (e: unknown) => e instanceof NotFoundError && e.code === 'model_not_found' && e.param === 'model');
  await assert.rejects(
    client.chat.completions.create({ model: 'chatglm3-6b', messages, n: 3 }),
    (e: unknown) => e instanceof APIError && e.status === 400 && e.param === 'n',
  );
  const anon = new OpenAI({ apiKey: 'sk-nope', baseURL: client.baseURL, maxRetries: 0 });
  await assert.rejects(anon.models.list(), (e: unknown) => e instanceof AuthenticationError);
  await worker.script({ mode: 'midstream_error' });
  ctx.after(() => worker.script({ mode: 'ok' }));
  const stream = await client.chat.completions.create({ model: 'chatglm3-6b', messages, stream: true });
  await assert.rejects(
    (async () => {
      for await (const _ of stream) {
        // read until the error event
      }
    })(),
    (e: unknown) => e instanceof APIError && /mid-stream/.test(e.message),
  );
});
