/** The protocol's NDJSON: what the worker writes, the gateway reads back, whatever the chunking; garbage is a WORKER_ERROR. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLineReader, MAX_LINE_BYTES, ndjsonLine, parseEvent } from '../../../src/protocol/ndjson.js';
import { GenerateEventSchema, type GenerateEvent } from '../../../src/protocol/schemas.js';
import { AppError } from '../../../src/shared/errors.js';

function collect(chunks: Buffer[]): GenerateEvent[] {
  const reader = new EventLineReader();
  const out: GenerateEvent[] = [];
  for (const c of chunks) reader.write(c, out);
  reader.end(out);
  return out;
}

test('events round-trip through NDJSON', () => {
  const events = [
    { type: 'start', prompt_tokens: 3 },
    { type: 'token', ids: [5], text: '你' },
    {
      type: 'end',
      finish_reason: 'stop',
      usage: { prompt_tokens: 3, completion_tokens: 1 },
      timings: { queue_ms: 0, prefill_ms: 1, ttft_ms: 1, decode_ms: 0, total_ms: 1 },
    },
    { type: 'error', code: 'INTERNAL', message: 'x' },
  ] satisfies GenerateEvent[];
  for (const e of events) {
    const line = ndjsonLine(e);
    assert.ok(line.endsWith('\n'));
    assert.deepEqual(GenerateEventSchema.parse(JSON.parse(line)), e);
  }
  assert.equal(GenerateEventSchema.safeParse({ type: 'token', ids: 'x', text: 1 }).success, false);
  assert.equal(GenerateEventSchema.safeParse({ type: 'nope' }).success, false);
});
test('NDJSON events survive lines and characters split across chunks', async () => {
  const text =
    '{"type":"start","prompt_tokens":3}\n{"type":"token","ids":[1],"text":"借款"}\n\n{"type":"end","finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":1},"timings":{"queue_ms":0,"prefill_ms":0,"ttft_ms":0,"decode_ms":0,"total_ms":0}}';
  const bytes = Buffer.from(text);
  // Split inside the multi-byte 借 and inside a line.
  const cut = bytes.indexOf(Buffer.from('借')) + 1;
  const events = collect([bytes.subarray(0, 10), bytes.subarray(10, cut), bytes.subarray(cut)]);
  assert.deepEqual(events.map((e) => e.type), ['start', 'token', 'end']);
  assert.equal((events[1] as { text: string }).text, '借款');
});

test('every way of cutting a stream into chunks reads the same events', () => {
  const events: GenerateEvent[] = [
    { type: 'start', prompt_tokens: 7 },
    { type: 'token', ids: [1, 2], text: '《民法典》第六百七十五条' },
    { type: 'token', ids: [3], text: '😀 \\n "引号"' },
    { type: 'end', finish_reason: 'length', usage: { prompt_tokens: 7, completion_tokens: 3 }, timings: { queue_ms: 0, prefill_ms: 1, ttft_ms: 1, decode_ms: 2, total_ms: 3 } },
  ];
  const bytes = Buffer.from(events.map(ndjsonLine).join(''));
  const whole = collect([bytes]);
  assert.deepEqual(whole, events);
  // One byte at a time, and every single cut point (inside characters, at newlines).
  assert.deepEqual(collect([...bytes].map((b) => Buffer.from([b]))), events);
  for (let cut = 1; cut < bytes.length; cut++) assert.deepEqual(collect([bytes.subarray(0, cut), bytes.subarray(cut)]), events, `cut at ${cut}`);
  // A chunk the caller reuses after the call does not change the carried bytes.
  const reader = new EventLineReader();
  const out: GenerateEvent[] = [];
  const chunk = Buffer.from(bytes.subarray(0, 20));
  reader.write(chunk, out);
  chunk.fill(0x20);
  reader.write(bytes.subarray(20), out);
  reader.end(out);
  assert.deepEqual(out, events);
});

test('a line past the longest a worker may send is a WORKER_ERROR, whether or not it ends', () => {
  const long = Buffer.from(`{"type":"token","ids":[1],"text":"${'x'.repeat(MAX_LINE_BYTES)}"}`);
  const isWorkerError = (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR' && /longer than/.test(e.message);
  assert.throws(() => collect([long]), isWorkerError);
  assert.throws(() => collect([long, Buffer.from('\n')]), isWorkerError);
  assert.throws(() => collect([Buffer.concat([long, Buffer.from('\n')])]), isWorkerError);
});

test('garbage from a worker is a WORKER_ERROR, never a crash', async () => {
  for (const line of ['not json', '{}', '{"type":"token"}', '{"type":"token","ids":"x","text":1}', '[]', 'null', '{"type":"end","finish_reason":"maybe"}']) {
    assert.throws(() => parseEvent(line), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR', line);
  }
  assert.throws(() => collect([Buffer.from('{"type":"start","prompt_tokens":1}\n<html>')]), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR');
});

test('the quick path for start and token events accepts exactly what the schema accepts', () => {
  const good = ['{"type":"start","prompt_tokens":0}', '{"type":"start","prompt_tokens":12}', '{"type":"token","ids":[],"text":""}', '{"type":"token","ids":[1,2,3],"text":"借款"}', '{"type":"token","ids":[4],"text":"x","segment":0}', '{"type":"token","ids":[4],"text":"x","segment":3}'];
  for (const line of good) assert.deepEqual(parseEvent(line), GenerateEventSchema.parse(JSON.parse(line)), line);
  const bad = [
    '{"type":"start","prompt_tokens":-1}',
    '{"type":"start","prompt_tokens":1.5}',
    '{"type":"start","prompt_tokens":"3"}',
    '{"type":"token","ids":[1.5],"text":"a"}',
    '{"type":"token","ids":[null],"text":"a"}',
    '{"type":"token","ids":[1],"text":null}',
    '{"type":"token","ids":{"0":1},"text":"a"}',
    '{"type":"token","ids":[1],"text":"a","logprobs":"many"}',
    '{"type":"token","ids":[1],"text":"a","segment":-1}',
    '{"type":"token","ids":[1],"text":"a","segment":"0"}',
    '{"type":"token","ids":[1],"text":"a","segment":0.5}',
  ];
  for (const line of bad) {
    assert.equal(GenerateEventSchema.safeParse(JSON.parse(line)).success, false, `the schema refuses ${line}`);
    assert.throws(() => parseEvent(line), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR', line);
  }
});

/** Drives a WorkerResponse as undici would, with a controller that records aborts. */
