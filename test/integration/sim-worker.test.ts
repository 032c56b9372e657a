/**
 * The worker as a real process with the simulated engine (WORKER_ENGINE=sim) on the demo tiny
 * model's folder: scripted replies through the real scheduler, sampling, stop handling, segments
 * and streaming; start-up refusals of bad scripts; its timings under concurrent streams.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenerateEventSchema, ReadyzSchema, WorkerModelInfoSchema, type GenerateEvent } from '../../src/protocol/schemas.js';
import { ChatGLMTokenizer } from '../../src/tokenizer/tokenizer.js';
import { readReply } from '../../src/tokenizer/tool-call.js';
import { buildToolPrompt } from '../../src/tokenizer/tool-template.js';
import { SIM_FILLER_TEXT } from '../../src/worker/engine/sim-engine.js';
import { encodeReply } from '../../src/worker/engine/sim-script.js';
import { spawnNode } from '../helpers/node-process.js';
import { CLI_DIR } from '../helpers/paths.js';
import { demoTinyModel, generate, metric, startSimWorker, startWorker, tokenIds, type TinyModel, type WorkerProcess } from '../helpers/worker-process.js';

const PLAIN = '\n根据《中华人民共和国劳动合同法》第四十六条，用人单位应当向劳动者支付经济补偿。';
const WEATHER = "get_weather\n```python\ntool_call(city='北京', days=2)\n```";
const TIME = "get_time\n```python\ntool_call(zone='Asia/Shanghai')\n```";
const SCRIPT = [
  { match: '经济补偿', reply: PLAIN },
  { match: '天气', reply: `${WEATHER}<|assistant|>${TIME}<|observation|>` },
  // Also in 经济补偿 questions, but the first match wins.
  { match: '补偿', reply: '\n不会用到：前面的一条先匹配。' },
];

let model: TinyModel;
let worker: WorkerProcess;
let tok: ChatGLMTokenizer;
let scriptFile: string;

before(async () => {
  model = await demoTinyModel();
  tok = await ChatGLMTokenizer.fromFile(join(model.modelDir, 'tokenizer.model'));
  const sim = await startSimWorker(model, { script: SCRIPT });
  worker = sim;
  scriptFile = sim.scriptFile!;
});

after(async () => {
  await worker?.stop();
  model?.cleanup();
});

const user = (content: string) => [{ role: 'user' as const, content }];
const text = (events: GenerateEvent[]) => events.map((e) => (e.type === 'token' ? e.text : '')).join('');
const endOf = (events: GenerateEvent[]) => {
  const last = events.at(-1)!;
  assert.equal(last.type, 'end', JSON.stringify(last));
  return last as Extract<GenerateEvent, { type: 'end' }>;
};

test('the sim worker is ready without a model run, named by its manifest, and says it simulates', async () => {
  assert.deepEqual(ReadyzSchema.parse(await (await fetch(`${worker.url}/readyz`)).json()), {
    ready: true,
    model: 'chatglm3-demo-tiny',
    execution_provider: 'sim',
    load: { queue_length: 0, running_sequences: 0, kv_tokens_in_use: 0, kv_tokens_capacity: 16384 },
  });
  const info = WorkerModelInfoSchema.parse(await (await fetch(`${worker.url}/v1/adapters`)).json());
  assert.equal(info.context_length, 1024);
  assert.equal(await metric(worker.url, 'worker_execution_provider_info{provider="sim",requested="sim"'), 1);
});

test('a scripted reply comes out token for token, at any sampling settings, and ends on eos with stop', async () => {
  const expected = encodeReply(tok, PLAIN);
  for (const sampling of [
    { temperature: 0 },
    { temperature: 2, top_p: 1 },
    { temperature: 1.3, top_p: 0.05, top_k: 2, seed: 5 },
    { temperature: 0.8, top_p: 0.8, repetition_penalty: 10 },
    { temperature: 0.8, top_p: 0.8, repetition_penalty: 0.05 },
  ]) {
    const r = await generate(worker.url, { id: 'p', messages: user('被辞退了，经济补偿怎么算？'), max_tokens: 200, ...sampling });
    assert.equal(r.status, 200);
    for (const e of r.events) GenerateEventSchema.parse(e);
    assert.deepEqual(tokenIds(r.events), expected, JSON.stringify(sampling));
    assert.equal(text(r.events), PLAIN.trim());
    const end = endOf(r.events);
    assert.equal(end.finish_reason, 'stop');
    assert.equal(end.usage.completion_tokens, expected.length + 1, 'the eos id is counted, never streamed');
  }
});

test('stop strings, max_tokens and logprobs apply to scripted replies as to a model', async () => {
  const stopped = await generate(worker.url, { id: 's', messages: user('经济补偿'), max_tokens: 200, stop: ['第四十六条'] });
  assert.equal(text(stopped.events), '根据《中华人民共和国劳动合同法》');
  assert.equal(endOf(stopped.events).finish_reason, 'stop');
  const cut = await generate(worker.url, { id: 'c', messages: user('经济补偿'), max_tokens: 5 });
  assert.deepEqual(tokenIds(cut.events), encodeReply(tok, PLAIN).slice(0, 5));
  assert.equal(endOf(cut.events).finish_reason, 'length');
  const lp = await generate(worker.url, { id: 'l', messages: user('经济补偿'), max_tokens: 3, logprobs: 2 });
  const entries = lp.events.flatMap((e) => (e.type === 'token' && e.logprobs ? e.logprobs : []));
  assert.equal(entries.length, 3);
  for (const entry of entries) {
    assert.equal(entry.logprob, 0);
    assert.equal(entry.top_logprobs[0]!.id, entry.id);
    assert.equal(entry.top_logprobs[1]!.logprob, -2000);
  }
});

test('a scripted answer of two calls: a segment event per call, the calls read back, stop on <|observation|>', async () => {
  const prompt = buildToolPrompt({
    messages: [{ role: 'user', content: '北京这两天天气怎么样？现在几点？' }],
    tools: [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
      { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { type: 'string' } } } } },
    ],
  });
  assert.ok(prompt.ok);
  const r = await generate(worker.url, { id: 't', turns: prompt.value.turns, max_tokens: 300, temperature: 0.9 });
  assert.equal(r.status, 200);
  const segments = r.events.filter((e) => e.type === 'segment');
  assert.deepEqual(segments, [
    { type: 'segment', index: 0, metadata: 'get_weather' },
    { type: 'segment', index: 1, metadata: 'get_time' },
  ]);
  // Every token event says its segment; a segment's event comes before any of its text.
  const content = ['', ''];
  let announced = -1;
  for (const e of r.events) {
    if (e.type === 'segment') announced = e.index;
    if (e.type !== 'token') continue;
    assert.equal(typeof e.segment, 'number');
    if (e.text !== '') assert.ok(e.segment! <= announced);
    content[e.segment!] += e.text;
  }
  const reading = readReply(segments.map((s, i) => ({ metadata: s.metadata, content: content[i]! })), { toolNames: prompt.value.callableTools });
  assert.deepEqual(reading.toolCalls, [
    { name: 'get_weather', arguments: { city: '北京', days: 2 } },
    { name: 'get_time', arguments: { zone: 'Asia/Shanghai' } },
  ]);
  const all = encodeReply(tok, SCRIPT[1]!.reply);
  assert.equal(all.at(-1), tok.specialTokens['<|observation|>']);
  assert.deepEqual(tokenIds(r.events), all.slice(0, -1), 'every scripted id up to the stop id');
  assert.equal(endOf(r.events).finish_reason, 'stop');
});

test('a named tool_choice: the metadata line is in the prompt, segment 0 says it, the reply goes on with the call', async () => {
  const prompt = buildToolPrompt({
    messages: [{ role: 'user', content: '北京天气' }],
    tools: [{ type: 'function', function: { name: 'get_weather' } }],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  assert.ok(prompt.ok && prompt.value.answerMetadata === 'get_weather');
  const r = await generate(worker.url, { id: 'n', turns: prompt.value.turns, answer_metadata: 'get_weather', max_tokens: 300 });
  const start = r.events[0]!;
  assert.ok(start.type === 'start' && start.prompt_tokens === tok.encodeTurns(prompt.value.turns, { answerMetadata: 'get_weather' }).length);
  assert.deepEqual(r.events[1], { type: 'segment', index: 0, metadata: 'get_weather' });
  const segments = r.events.filter((e) => e.type === 'segment').map((e) => e.metadata);
  assert.deepEqual(segments, ['get_weather', 'get_time']);
  assert.equal(text(r.events.filter((e) => e.type === 'token' && e.segment === 0)), WEATHER.slice('get_weather\n'.length));
});

test('a plain chat answer still reports its (empty) metadata line; prompt requests have no segments', async () => {
  const chat = await generate(worker.url, { id: 'm', messages: user('经济补偿'), max_tokens: 200 });
  assert.deepEqual(
    chat.events.filter((e) => e.type === 'segment'),
    [{ type: 'segment', index: 0, metadata: '' }],
  );
  assert.ok(chat.events.every((e) => e.type !== 'token' || e.segment === 0));
  const raw = await generate(worker.url, { id: 'r', prompt: '经济补偿', max_tokens: 200 });
  assert.ok(raw.events.every((e) => e.type !== 'segment' && (e.type !== 'token' || e.segment === undefined)));
  assert.deepEqual(tokenIds(raw.events), encodeReply(tok, PLAIN), 'a prompt without user turns is matched on its whole text');
  assert.equal(text(raw.events), PLAIN, 'and its text is not post-processed');
});

test('with no match the filler runs until max_tokens', async () => {
  const r = await generate(worker.url, { id: 'f', messages: user('完全无关的问题'), max_tokens: 64 });
  const end = endOf(r.events);
  assert.equal(end.finish_reason, 'length');
  assert.equal(end.usage.completion_tokens, 64);
  assert.ok(SIM_FILLER_TEXT.startsWith(text(r.events)), text(r.events));
  assert.ok(text(r.events).length > 10);
});

test('bad turns are refused with 400 and the field at fault', async () => {
  const r = await generate(worker.url, { id: 'b', turns: [{ role: 'tool', metadata: '', content: 'x' }], max_tokens: 4 });
  assert.equal(r.status, 400);
  assert.deepEqual((r.json as { error: { code: string; param: string } }).error.param, 'turns.0.role');
  const both = await generate(worker.url, { id: 'b', turns: [{ role: 'user', metadata: '', content: 'x' }], prompt: 'x', max_tokens: 4 });
  assert.equal(both.status, 400);
  assert.equal((both.json as { error: { param: string } }).error.param, 'prompt');
});

/** Starts a sim worker expected to refuse its start; returns its exit code and output. */
async function refusedStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const p = await spawnNode(join(CLI_DIR, 'worker.js'), {
    env: { ...process.env, WORKER_LOG_LEVEL: 'warn', WORKER_ENGINE: 'sim', WORKER_MODEL_DIR: model.modelDir, ...env },
    portEnv: 'WORKER_PORT',
  });
  const timer = setTimeout(() => void p.stop(0), 15_000);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, output: p.output() };
}

test('a bad script file stops the start with one line naming the file, the line and the field', async () => {
  const cases: Array<[string, RegExp]> = [
    ['{"match": "a", "reply": "b"}\n{"match": "a", "reply": }\n', /script\.jsonl:2: not JSON/],
    ['{"match": "a"}\n', /script\.jsonl:1: reply: /],
    ['\n\n{"match": "a", "reply": "b", "ttft": 3}\n', /script\.jsonl:3: ttft: unknown field/],
    ['{"match": 1, "reply": "b"}\n', /script\.jsonl:1: match: /],
    ['["match", "reply"]\n', /script\.jsonl:1: a line must be a JSON object/],
  ];
  for (const [content, expected] of cases) {
    const file = join(model.root, 'bad', 'script.jsonl');
    mkdirSync(join(model.root, 'bad'), { recursive: true });
    writeFileSync(file, content);
    const { code, output } = await refusedStart({ WORKER_SIM_SCRIPT: file });
    assert.equal(code, 1, output);
    assert.match(output, expected);
  }
  const missing = await refusedStart({ WORKER_SIM_SCRIPT: join(model.root, 'nope.jsonl') });
  assert.equal(missing.code, 1);
  assert.match(missing.output, /nope\.jsonl: cannot be read \(ENOENT\)/);
  const badKey = await refusedStart({ WORKER_ENGINE: 'simulated' });
  assert.equal(badKey.code, 2);
  assert.match(badKey.output, /WORKER_ENGINE/);
});

test('a folder with only tokenizer.model is enough: named after the folder, ChatGLM3-6B context, no adapters', async () => {
  const dir = join(model.root, 'chatglm3-6b-sim');
  mkdirSync(dir);
  copyFileSync(join(model.modelDir, 'tokenizer.model'), join(dir, 'tokenizer.model'));
  const w = await startWorker({ WORKER_ENGINE: 'sim', WORKER_MODEL_DIR: dir, WORKER_DEMO_MODEL: 'off', WORKER_SIM_SCRIPT: scriptFile, WORKER_SIM_TTFT_MS: '0', WORKER_SIM_ITL_MS: '0' });
  try {
    const info = WorkerModelInfoSchema.parse(await (await fetch(`${w.url}/v1/adapters`)).json());
    assert.deepEqual(info, { model: 'chatglm3-6b-sim', context_length: 8192, adapter_mode: 'none', adapters: [] });
    const r = await generate(w.url, { id: 'x', messages: user('经济补偿'), max_tokens: 200 });
    assert.deepEqual(tokenIds(r.events), encodeReply(tok, PLAIN));
  } finally {
    await w.stop();
  }
});

test('timings hold within 20 % under 8 concurrent streams (client side: time to first token, inter-token latency)', async () => {
  const TTFT = 600;
  const ITL = 40;
  const TOKENS = 30;
  const w = await startSimWorker(model, { ttftMs: TTFT, itlMs: ITL });
  try {
    // One request first: the worker's first request pays for compiling its code paths.
    await generate(w.url, { id: 'warm', messages: user('预热'), max_tokens: 2 });
    const streams = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const stamps: number[] = [];
        const t0 = performance.now();
        const r = await generate(
          w.url,
          { id: `c${i}`, messages: user(`问题${i}`), max_tokens: TOKENS },
          { onEvent: (e) => void (e.type === 'token' && e.ids.length > 0 && stamps.push(performance.now())) },
        );
        assert.equal(endOf(r.events).usage.completion_tokens, TOKENS);
        return { ttft: stamps[0]! - t0, itl: (stamps.at(-1)! - stamps[0]!) / (stamps.length - 1), tokens: stamps.length };
      }),
    );
    const summary = streams.map((s) => `ttft ${s.ttft.toFixed(0)} ms, itl ${s.itl.toFixed(1)} ms`).join('; ');
    for (const s of streams) {
      assert.equal(s.tokens, TOKENS);
      assert.ok(s.ttft >= TTFT * 0.8 && s.ttft <= TTFT * 1.2, `time to first token off by more than 20 %: ${summary}`);
      assert.ok(s.itl >= ITL * 0.8 && s.itl <= ITL * 1.2, `inter-token latency off by more than 20 %: ${summary}`);
    }
    console.log(`sim timings, 8 streams (set: ttft ${TTFT} ms, itl ${ITL} ms): ${summary}`);
  } finally {
    await w.stop();
  }
});
