/**
 * The gateway in front of a real worker process serving the golden tiny ChatGLM3 model
 * (exported into a temporary folder by the model builder), through the official openai client.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import OpenAI, { BadRequestError, NotFoundError } from 'openai';
import { TEST_KEY, auth, testGateway } from '../helpers/gateway.js';
import { exportTinyModel, startWorker, type TinyModel, type WorkerProcess } from '../helpers/worker-process.js';

let model: TinyModel;
let worker: WorkerProcess;
let app: FastifyInstance;
let client: OpenAI;

before(async () => {
  model = await exportTinyModel('runtime');
  worker = await startWorker({ WORKER_MODEL_DIR: model.modelDir, WORKER_ADAPTERS_DIR: model.adaptersDir });
  app = await testGateway({ workers: { urls: [worker.url] } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  client = new OpenAI({ apiKey: TEST_KEY, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
});
after(async () => {
  await app?.close();
  await worker?.stop();
  model?.cleanup();
});

test('models come from the worker: the base model and its adapter', async () => {
  const ids = (await client.models.list()).data.map((m) => m.id);
  assert.equal(ids.length, 2);
  assert.ok(ids.includes('legal'), ids.join());
});

test('chat through the gateway to the real worker, greedy, plain and streamed, base and adapter', async () => {
  const base = (await client.models.list()).data[0]!.id;
  const messages = [{ role: 'user' as const, content: '借钱不还怎么办？' }];
  const plain = await client.chat.completions.create({ model: base, messages, max_tokens: 8, temperature: 0, seed: 1 });
  assert.equal(plain.choices[0]!.finish_reason, 'length');
  assert.equal(plain.usage!.completion_tokens, 8);
  assert.ok(plain.usage!.prompt_tokens > 5);
  let streamed = '';
  let finish: string | null = null;
  const stream = await client.chat.completions.create({ model: base, messages, max_tokens: 8, temperature: 0, seed: 1, stream: true });
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(streamed, plain.choices[0]!.message.content, 'greedy: the stream says what the plain answer said');
  assert.equal(finish, 'length');
  const lora = await client.chat.completions.create({ model: 'legal', messages, max_tokens: 8, temperature: 0 });
  assert.equal(lora.model, 'legal');
  assert.equal(lora.usage!.completion_tokens, 8);

  const own = await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages, max_tokens: 8, temperature: 0 } });
  assert.equal(own.statusCode, 200);
  assert.equal(own.json().degraded, false);
  assert.equal(own.json().message.content, plain.choices[0]!.message.content);
});

test("the worker's refusals reach the client as they are", async () => {
  const base = (await client.models.list()).data[0]!.id;
  await assert.rejects(
    client.chat.completions.create({ model: base, messages: [{ role: 'user', content: '借款合同纠纷。'.repeat(400) }], max_tokens: 8 }),
    (e: unknown) => e instanceof BadRequestError && e.code === 'context_length_exceeded',
  );
  await assert.rejects(client.chat.completions.create({ model: 'no-such-adapter', messages: [{ role: 'user', content: '你好' }] }), (e: unknown) => e instanceof NotFoundError);
  assert.equal(app.breaker.state, 'closed', 'client errors are not failures');
});
