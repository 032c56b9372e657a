import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { eventError, parseEvent, readEvents } from '../../src/gateway/dispatch.js';
import { AppError } from '../../src/shared/errors.js';

async function collect(chunks: Buffer[]) {
  const out = [];
  for await (const e of readEvents(Readable.from(chunks))) out.push(e);
  return out;
}

test('NDJSON events survive lines and characters split across chunks', async () => {
  const text =
    '{"type":"start","prompt_tokens":3}\n{"type":"token","ids":[1],"text":"借款"}\n\n{"type":"end","finish_reason":"stop","usage":{"prompt_tokens":3,"completion_tokens":1},"timings":{"queue_ms":0,"prefill_ms":0,"ttft_ms":0,"decode_ms":0,"total_ms":0}}';
  const bytes = Buffer.from(text);
  // Split inside the multi-byte 借 and inside a line.
  const cut = bytes.indexOf(Buffer.from('借')) + 1;
  const events = await collect([bytes.subarray(0, 10), bytes.subarray(10, cut), bytes.subarray(cut)]);
  assert.deepEqual(events.map((e) => e.type), ['start', 'token', 'end']);
  assert.equal((events[1] as { text: string }).text, '借款');
});

test('garbage from a worker is a WORKER_ERROR, never a crash', async () => {
  for (const line of ['not json', '{}', '{"type":"token"}', '{"type":"token","ids":"x","text":1}', '[]', 'null', '{"type":"end","finish_reason":"maybe"}']) {
    assert.throws(() => parseEvent(line), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR', line);
  }
  await assert.rejects(collect([Buffer.from('{"type":"start","prompt_tokens":1}\n<html>')]), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR');
});

test('worker error codes: client errors and OVERLOADED keep theirs, the rest are WORKER_ERROR', () => {
  assert.equal(eventError({ code: 'context_length_exceeded', message: 'x' }).code, 'CONTEXT_LENGTH_EXCEEDED');
  assert.equal(eventError({ code: 'overloaded', message: 'x' }).code, 'OVERLOADED');
  assert.equal(eventError({ code: 'internal', message: 'x' }).code, 'WORKER_ERROR');
  assert.equal(eventError({ code: 'no_such_code', message: 'x' }).code, 'WORKER_ERROR');
});
