/**
 * Tools in ChatGLM3's own format through the gateway, with the official openai client:
 * - `/tokenize` gives the golden prompt ids of every golden render case (a real worker on the
 *   exported golden model supplies the tokenizer), and `/detokenize` reads ids back;
 * - a worker with the simulated engine writes the golden `tool_call(...)` cases as ChatGLM3 does
 *   (the function's name on its metadata line, the call in a python fence): every parse case
 *   comes back as `tool_calls` with its arguments, every refuse case as plain text that was never
 *   evaluated, plain and streamed (the client assembles the streamed `delta.tool_calls`);
 * - a whole tool loop: tools → tool_calls → a tool message → the final answer;
 * - `tool_choice` none and a named function, several calls, `parallel_tool_calls: false`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import OpenAI from 'openai';
import { auth, TEST_KEY, testGateway, until } from '../helpers/gateway.js';
import { readJson } from '../helpers/json.js';
import { GOLDEN_DIR } from '../helpers/paths.js';
import { demoTinyModel, exportTinyModel, startSimWorker, startWorker, type TinyModel, type WorkerProcess } from '../helpers/worker-process.js';

interface ToolsGolden {
  render: Array<{ request: { tools?: unknown[]; messages: OpenAI.ChatCompletionMessageParam[] }; input_ids: number[] }>;
  parse: Array<{ code: string; arguments: Record<string, unknown> }>;
  refuse: string[];
}
const golden = readJson<ToolsGolden>(join(GOLDEN_DIR, 'tools/expected.json'));

const LOOKUP: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: { name: 'lookup', description: '查询', parameters: { type: 'object', properties: {} } },
};
const STATUTE: OpenAI.ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'get_statute',
    description: '查询法律条文',
    parameters: { type: 'object', properties: { law: { type: 'string' }, article: { type: 'integer' } }, required: ['law', 'article'] },
  },
};
const CALL_577 = "get_statute\n```python\ntool_call(law='民法典', article=577)\n```";
const ANSWER_577 = '\n根据民法典第五百七十七条，当事人一方不履行合同义务的，应当承担违约责任。';
const fence = (code: string, k: number) => (k % 2 === 0 ? `\`\`\`python\n${code}\n\`\`\`` : `  ${code}  `);
const SCRIPT = [
  ...golden.parse.map((c, k) => ({ match: `PARSE-${k}`, reply: `lookup\n${fence(c.code, k)}<|observation|>` })),
  ...golden.refuse.map((code, k) => ({ match: `REFUSE-${k}`, reply: `lookup\n${fence(code, k)}<|observation|>` })),
  // Asked with knowledge on: the answer is a call, and names the entries it was given.
  { match: '借钱不还', reply: `${CALL_577}<|observation|>` },
  { match: '两个条文', reply: `${CALL_577}<|assistant|>get_statute\n\`\`\`python\ntool_call(law='劳动合同法', article=47)\n\`\`\`<|observation|>` },
  // The second round of the loop answers the tool's result.
  { match: '违约责任条文', reply: ANSWER_577 },
  { match: '第577条', reply: `${CALL_577}<|observation|>` },
];

let simModel: TinyModel;
let sim: WorkerProcess;
let app: FastifyInstance;
let client: OpenAI;

before(async () => {
  simModel = await demoTinyModel();
  sim = await startSimWorker(simModel, { script: SCRIPT });
  app = await testGateway({ workers: { urls: [sim.url] }, limits: { enabled: false } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as { port: number };
  client = new OpenAI({ apiKey: TEST_KEY, baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
});
after(async () => {
  await app?.close();
  await sim?.stop();
  simModel?.cleanup();
});

const MODEL = 'chatglm3-demo-tiny';
const ask = (content: string): OpenAI.ChatCompletionMessageParam[] => [{ role: 'user', content }];

/** The answer plain, and streamed as the official client assembles it. */
type Ask = Omit<OpenAI.ChatCompletionCreateParamsNonStreaming, 'model' | 'stream'>;

/** One answer, plain or streamed as the official client assembles it. */
async function answer(params: Ask, stream: boolean): Promise<OpenAI.ChatCompletion.Choice> {
  const full = { model: MODEL, max_tokens: 200, ...params };
  const completion = stream ? await client.chat.completions.stream(full).finalChatCompletion() : await client.chat.completions.create(full);
  return completion.choices[0]!;
}

async function both(params: Ask): Promise<OpenAI.ChatCompletion.Choice[]> {
  return [await answer(params, false), await answer(params, true)];
}

test('/tokenize gives the golden ids of every render case; /detokenize reads ids back; bad bodies are 4xx', async (ctx) => {
  const model = await exportTinyModel('none');
  ctx.after(() => model.cleanup());
  const worker = await startWorker({ WORKER_MODEL_DIR: model.modelDir, WORKER_ADAPTERS_DIR: model.adaptersDir });
  ctx.after(() => worker.stop());
  const g = await testGateway({ workers: { urls: [worker.url] } });
  ctx.after(() => g.close());
  assert.ok(await until(() => g.prompts.tokenizer !== null, 5000), 'the tokenizer is fetched from the worker');
  const base = g.pool.listModels().bases[0]!;
  for (const [i, c] of golden.render.entries()) {
    const res = await g.inject({ method: 'POST', url: '/tokenize', headers: auth, payload: { model: base, ...c.request } });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as { count: number; max_model_len: number; tokens: number[] };
    assert.deepEqual(body.tokens, c.input_ids, `render case ${i}`);
    assert.equal(body.count, c.input_ids.length);
    assert.ok(body.max_model_len > 0);
    // Without the generation prompt: the same turns, no `<|assistant|>` at the end.
    const open = (await g.inject({ method: 'POST', url: '/tokenize', headers: auth, payload: { model: base, ...c.request, add_generation_prompt: false } })).json() as { tokens: number[] };
    assert.deepEqual(open.tokens, c.input_ids.slice(0, -1));
  }
  const prompt = (await g.inject({ method: 'POST', url: '/tokenize', headers: auth, payload: { model: base, prompt: '借款合同' } })).json() as { tokens: number[] };
  const back = (await g.inject({ method: 'POST', url: '/detokenize', headers: auth, payload: { model: base, tokens: prompt.tokens.slice(2) } })).json() as { prompt: string };
  assert.equal(back.prompt, '借款合同');
  const bad: Array<[string, object, number, string]> = [
    ['/tokenize', { model: base }, 400, 'messages'],
    ['/tokenize', { model: base, prompt: 'x', messages: ask('y') }, 400, 'prompt'],
    ['/tokenize', { model: base, prompt: 'x', tools: [] }, 400, 'tools'],
    ['/tokenize', { model: base, messages: ask('x'), tools: [{ type: 'function', function: { name: '1 2' } }] }, 400, 'tools.0.function.name'],
    ['/tokenize', { model: 'nobody', prompt: 'x' }, 404, 'model'],
    ['/detokenize', { model: base, tokens: [-1] }, 400, 'tokens.0'],
    ['/detokenize', { model: base, tokens: 'abc' }, 400, 'tokens'],
  ];
  for (const [url, payload, status, param] of bad) {
    const res = await g.inject({ method: 'POST', url, headers: auth, payload });
    assert.equal(res.statusCode, status, `${url} ${JSON.stringify(payload)}: ${res.body}`);
    assert.equal((res.json() as { error: { param: string } }).error.param, param, res.body);
  }
});

test('every golden parse case comes back as tool_calls with its arguments, plain and streamed', async () => {
  for (const [k, c] of golden.parse.entries()) {
    for (const choice of await both({ messages: ask(`PARSE-${k}`), tools: [LOOKUP] })) {
      assert.equal(choice.finish_reason, 'tool_calls', c.code);
      const calls = choice.message.tool_calls!;
      assert.equal(calls.length, 1, c.code);
      const call = calls[0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      assert.equal(call.type, 'function');
      assert.match(call.id, /^call_[0-9a-f]{24}$/);
      assert.equal(call.function.name, 'lookup');
      assert.deepEqual(JSON.parse(call.function.arguments), c.arguments, c.code);
      assert.ok(!choice.message.content, 'a call, not text');
    }
  }
});

test('every golden refuse case is plain text with finish_reason stop, never evaluated', async () => {
  for (const [k, code] of golden.refuse.entries()) {
    for (const choice of await both({ messages: ask(`REFUSE-${k}`), tools: [LOOKUP] })) {
      assert.equal(choice.finish_reason, 'stop', code);
      assert.ok(!choice.message.tool_calls || choice.message.tool_calls.length === 0, code);
      assert.ok(choice.message.content!.includes(code.slice(0, 12)), `the text is what the model wrote: ${choice.message.content}`);
    }
  }
});

test('a whole tool loop with the official client: tools → tool_calls → a tool message → the answer', async () => {
  for (const stream of [false, true]) {
    const messages: OpenAI.ChatCompletionMessageParam[] = ask('民法典第577条是怎么规定的？');
    const first = await answer({ messages, tools: [STATUTE] }, stream);
    assert.equal(first.finish_reason, 'tool_calls');
    const call = first.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.deepEqual(JSON.parse(call.function.arguments), { law: '民法典', article: 577 });
    // The assistant's turn as the client sends it back: its role, content and calls.
    messages.push({ role: 'assistant', content: first.message.content, tool_calls: first.message.tool_calls }, {
      role: 'tool',
      tool_call_id: call.id,
      content: JSON.stringify({ text: '当事人一方不履行合同义务……应当承担违约责任条文' }),
    });
    const second = await answer({ messages, tools: [STATUTE] }, stream);
    assert.equal(second.finish_reason, 'stop');
    assert.equal(second.message.content, ANSWER_577.trim());
  }
});

test('several calls in one answer; parallel_tool_calls false keeps the first; tool_choice none reads text; a named choice is pre-written', async () => {
  for (const choice of await both({ messages: ask('两个条文'), tools: [STATUTE] })) {
    const calls = choice.message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
    assert.deepEqual(calls.map((c) => JSON.parse(c.function.arguments)), [{ law: '民法典', article: 577 }, { law: '劳动合同法', article: 47 }]);
    assert.equal(new Set(calls.map((c) => c.id)).size, 2);
  }
  for (const choice of await both({ messages: ask('两个条文'), tools: [STATUTE], parallel_tool_calls: false })) {
    assert.equal(choice.message.tool_calls!.length, 1);
  }
  for (const choice of await both({ messages: ask('民法典第577条'), tools: [STATUTE], tool_choice: 'none' })) {
    assert.equal(choice.finish_reason, 'stop');
    assert.ok(!choice.message.tool_calls?.length);
  }
  // Named: the metadata line is in the prompt; the model goes on with the call.
  for (const choice of await both({ messages: ask('民法典第577条'), tools: [LOOKUP, STATUTE], tool_choice: { type: 'function', function: { name: 'get_statute' } } })) {
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal((choice.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.name, 'get_statute');
  }
});

test('knowledge and tools in one request: the answer has sources and tool_calls, plain and streamed', async () => {
  for (const stream of [false, true]) {
    const params = { model: MODEL, max_tokens: 200, messages: ask('朋友借钱不还怎么办？'), tools: [STATUTE], knowledge: true } as OpenAI.ChatCompletionCreateParamsNonStreaming;
    let body: { choices: OpenAI.ChatCompletion.Choice[]; sources?: Array<{ id: string }> };
    if (stream) {
      const s = client.chat.completions.stream(params as unknown as Parameters<typeof client.chat.completions.stream>[0]);
      let sources: Array<{ id: string }> | undefined;
      s.on('chunk', (chunk) => {
        sources ??= (chunk as unknown as { sources?: Array<{ id: string }> }).sources;
      });
      const done = await s.finalChatCompletion();
      body = { choices: done.choices, ...(sources ? { sources } : {}) };
    } else {
      body = (await client.chat.completions.create(params)) as unknown as typeof body;
    }
    assert.equal(body.choices[0]!.finish_reason, 'tool_calls', `stream ${stream}`);
    assert.deepEqual(JSON.parse((body.choices[0]!.message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall).function.arguments), { law: '民法典', article: 577 });
    assert.ok(body.sources && body.sources.some((x) => x.id === 'kb-1'), `sources: ${JSON.stringify(body.sources)}`);
  }
});
