import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { GenerateEvent } from '../../../../src/protocol/schemas.js';
import { ChatGLMTokenizer } from '../../../../src/tokenizer/tokenizer.js';
import { createWorkerMetrics } from '../../../../src/worker/metrics.js';
import { Sampler, TokenSet, createRng } from '../../../../src/worker/sampling.js';
import { Scheduler, type ScheduledRequest } from '../../../../src/worker/scheduler.js';
import { SIM_FILLER_TEXT, SimEngine, type SimEngineOptions } from '../../../../src/worker/engine/sim-engine.js';
import { encodeReply } from '../../../../src/worker/engine/sim-script.js';
import { GOLDEN_TOKENIZER_DIR } from '../../../helpers/paths.js';

const tok = await ChatGLMTokenizer.fromFile(join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model'));

const REPLY = '\n根据劳动合同法第四十六条，用人单位应当支付经济补偿。';
const CALLS = "get_weather\n```python\ntool_call(city='北京')\n```<|assistant|>get_time\n```python\ntool_call()\n```<|observation|>";

function engine(options: Partial<SimEngineOptions> = {}): SimEngine {
  return new SimEngine({
    tokenizer: tok,
    script: [
      { match: '补偿', reply: REPLY, line: 1 },
      { match: '天气', reply: CALLS, line: 2 },
    ],
    model: 'sim-test',
    contextLength: 512,
    vocabSize: 1024,
    maxSequences: 8,
    ttftMs: 0,
    itlMs: 0,
    ...options,
  });
}

const chat = (content: string) => tok.encodeTurns([{ role: 'user', metadata: '', content }]);

test("the engine's logits leave sampling one choice, whatever the sampling parameters", async () => {
  const e = engine();
  const sampler = new Sampler(e.info.vocabSize);
  const expected = encodeReply(tok, REPLY);
  const seq = e.open(null);
  const row = await e.prefill(seq, chat('经济补偿怎么算'));
  const target = expected[0]!;
  const stats = sampler.logprobs(row, 3);
  assert.equal(row[target]! - stats.logZ, 0, 'the reply token has logprob 0');
  assert.deepEqual(
    stats.top.map((t) => t.id === target || t.logprob === -2000),
    [true, true, true],
  );
  // Every other id is in `seen` (prompt and output), so the penalty hits them all, and the reply token too.
  const everything = Array.from({ length: e.info.vocabSize }, (_, i) => i);
  let draws = 0;
  for (const temperature of [0, 0.01, 0.7, 1, 2]) {
    for (const top_p of [0.01, 0.5, 0.8, 1]) {
      for (const top_k of [undefined, 0, 1, 3, 50]) {
        for (const repetition_penalty of [undefined, 1e-6, 0.1, 1, 1.3, 10]) {
          for (let seed = 0; seed < 3; seed++) {
            const copy = Float32Array.from(row);
            const seen = new TokenSet(e.info.vocabSize, everything);
            const id = sampler.sample(copy, { temperature, top_p, top_k, repetition_penalty }, createRng(seed), seen);
            assert.equal(id, target, JSON.stringify({ temperature, top_p, top_k, repetition_penalty, seed }));
            draws++;
          }
        }
      }
    }
  }
  assert.equal(draws, 5 * 4 * 5 * 6 * 3);
});

function request(promptIds: number[], extra: Partial<ScheduledRequest> = {}): ScheduledRequest {
  return { id: 'r', promptIds, adapter: null, maxTokens: 200, sampling: { temperature: 1, top_p: 0.8 }, stop: [], chat: true, ...extra };
}

function collect(scheduler: Scheduler, req: ScheduledRequest): Promise<GenerateEvent[]> {
  return new Promise((resolve) => {
    const events: GenerateEvent[] = [];
    scheduler.submit(req, (ev) => {
      events.push(ev);
      if (ev.type === 'end' || ev.type === 'error') resolve(events);
    });
  });
}

const ids = (events: GenerateEvent[]) => events.flatMap((e) => (e.type === 'token' ? e.ids : []));
const text = (events: GenerateEvent[]) => events.map((e) => (e.type === 'token' ? e.text : '')).join('');

test('through the real scheduler: a scripted reply token for token, calls as segments, the filler until max_tokens', async () => {
  const e = engine();
  const scheduler = new Scheduler(e, tok, { maxRunningSequences: 8, maxKvTokens: 8192, maxQueue: 8, prefillChunkTokens: 8 }, createWorkerMetrics());
  // The prompt comes in chunks of 8: the reply is chosen on the whole of it.
  const plain = await collect(scheduler, request(chat('公司裁员，经济补偿怎么算？')));
  assert.deepEqual(ids(plain), encodeReply(tok, REPLY));
  assert.equal(text(plain), REPLY.trim());
  const plainEnd = plain.at(-1)!;
  assert.ok(plainEnd.type === 'end' && plainEnd.finish_reason === 'stop');
  assert.equal(plainEnd.usage.completion_tokens, encodeReply(tok, REPLY).length + 1, 'and the eos id');

  const calls = await collect(scheduler, request(chat('北京今天天气如何')));
  const expectedIds = encodeReply(tok, CALLS);
  assert.deepEqual(ids(calls), expectedIds.slice(0, -1), 'every id up to the <|observation|> stop id');
  assert.deepEqual(
    calls.filter((ev) => ev.type === 'segment'),
    [
      { type: 'segment', index: 0, metadata: 'get_weather' },
      { type: 'segment', index: 1, metadata: 'get_time' },
    ],
  );
  const last = calls.at(-1)!;
  assert.ok(last.type === 'end' && last.finish_reason === 'stop' && last.usage.completion_tokens === expectedIds.length);

  const filler = await collect(scheduler, request(chat('无关的问题'), { maxTokens: 40 }));
  const fillerEnd = filler.at(-1)!;
  assert.ok(fillerEnd.type === 'end' && fillerEnd.finish_reason === 'length' && fillerEnd.usage.completion_tokens === 40);
  assert.ok(SIM_FILLER_TEXT.startsWith(text(filler)), text(filler));
  await scheduler.drain(0);
});

test('the filler reads on seamlessly past the end of one copy of its paragraph', async () => {
  const e = engine({ script: [] });
  const scheduler = new Scheduler(e, tok, { maxRunningSequences: 8, maxKvTokens: 8192, maxQueue: 8, prefillChunkTokens: 128 }, createWorkerMetrics());
  const n = tok.encode(SIM_FILLER_TEXT).length * 2 + 10;
  const events = await collect(scheduler, request(chat('x'), { maxTokens: n }));
  assert.ok(SIM_FILLER_TEXT.repeat(3).startsWith(text(events)));
  assert.ok(text(events).length > SIM_FILLER_TEXT.length * 1.5);
  await scheduler.drain(0);
});
