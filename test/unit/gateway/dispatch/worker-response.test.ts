import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { Cancel } from '../../../../src/gateway/dispatch/cancel.js';
import { EventLineReader, WorkerResponse, eventError, parseEvent } from '../../../../src/gateway/dispatch/worker-response.js';
import { GenerateEventSchema, type GenerateEvent } from '../../../../src/protocol/schemas.js';
import { AppError } from '../../../../src/shared/errors.js';

function collect(chunks: Buffer[]): GenerateEvent[] {
  const reader = new EventLineReader();
  const out: GenerateEvent[] = [];
  for (const c of chunks) reader.write(c, out);
  reader.end(out);
  return out;
}

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

test('garbage from a worker is a WORKER_ERROR, never a crash', async () => {
  for (const line of ['not json', '{}', '{"type":"token"}', '{"type":"token","ids":"x","text":1}', '[]', 'null', '{"type":"end","finish_reason":"maybe"}']) {
    assert.throws(() => parseEvent(line), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR', line);
  }
  assert.throws(() => collect([Buffer.from('{"type":"start","prompt_tokens":1}\n<html>')]), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR');
});

test('worker error codes: client errors and OVERLOADED keep theirs, the rest are WORKER_ERROR', () => {
  assert.equal(eventError({ code: 'context_length_exceeded', message: 'x' }).code, 'CONTEXT_LENGTH_EXCEEDED');
  assert.equal(eventError({ code: 'overloaded', message: 'x' }).code, 'OVERLOADED');
  assert.equal(eventError({ code: 'internal', message: 'x' }).code, 'WORKER_ERROR');
  assert.equal(eventError({ code: 'no_such_code', message: 'x' }).code, 'WORKER_ERROR');
});

test('the quick path for start and token events accepts exactly what the schema accepts', () => {
  const good = ['{"type":"start","prompt_tokens":0}', '{"type":"start","prompt_tokens":12}', '{"type":"token","ids":[],"text":""}', '{"type":"token","ids":[1,2,3],"text":"借款"}'];
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
  ];
  for (const line of bad) {
    assert.equal(GenerateEventSchema.safeParse(JSON.parse(line)).success, false, `the schema refuses ${line}`);
    assert.throws(() => parseEvent(line), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR', line);
  }
});

/** Drives a WorkerResponse as undici would, with a controller that records aborts. */
function drive(status: number, chunks: string[], end = true) {
  const response = new WorkerResponse();
  const aborted: Error[] = [];
  const controller = { abort: (e: Error) => aborted.push(e) } as unknown as Dispatcher.DispatchController;
  response.onRequestStart(controller);
  response.onResponseStart(controller, status);
  for (const c of chunks) response.onResponseData(controller, Buffer.from(c));
  if (end) response.onResponseEnd();
  return { response, aborted };
}

async function drain(response: WorkerResponse): Promise<string[]> {
  const types: string[] = [];
  for (;;) {
    let e = response.next();
    if (e instanceof Promise) e = await e;
    if (e === undefined) return types;
    types.push(e.type);
  }
}

const END_LINE = '{"type":"end","finish_reason":"stop","usage":{"prompt_tokens":1,"completion_tokens":1},"timings":{"queue_ms":0,"prefill_ms":0,"ttft_ms":0,"decode_ms":0,"total_ms":0}}\n';

test('a worker response: events in order, the start known at the first token, waits for what has not come', async () => {
  const { response } = drive(200, ['{"type":"start","prompt_tokens":1}\n{"type":"tok', 'en","ids":[5],"text":"借"}\n'], false);
  await response.firstToken;
  assert.equal((response.next() as { type: string }).type, 'start');
  assert.equal((response.next() as { type: string }).type, 'token');
  const later = response.next();
  assert.ok(later instanceof Promise, 'nothing queued: a promise');
  response.onResponseData({} as Dispatcher.DispatchController, Buffer.from(END_LINE));
  response.onResponseEnd();
  assert.equal(((await later) as { type: string }).type, 'end');
  assert.equal(response.next(), undefined);
});

test('a worker response that fails: error event before the first token, refusal, garbage after tokens', async () => {
  const early = drive(200, ['{"type":"start","prompt_tokens":1}\n{"type":"error","code":"overloaded","message":"busy"}\n']);
  await assert.rejects(early.response.firstToken, (e: unknown) => e instanceof AppError && e.code === 'OVERLOADED');
  assert.equal(early.aborted.length, 1, 'the connection is given up');

  const refused = drive(400, ['{"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded","param":"messages"}}']);
  await assert.rejects(refused.response.firstToken, (e: unknown) => e instanceof AppError && e.code === 'CONTEXT_LENGTH_EXCEEDED' && e.param === 'messages');

  const garbage = drive(200, ['{"type":"token","ids":[1],"text":"a"}\n<html>\n']);
  await garbage.response.firstToken;
  assert.equal(garbage.aborted.length, 1);
  await assert.rejects(drain(garbage.response), (e: unknown) => e instanceof AppError && e.code === 'WORKER_ERROR');

  const silent = drive(200, ['{"type":"start","prompt_tokens":1}\n']);
  await assert.rejects(silent.response.firstToken, /before the first token/);
});

test('aborting a response drops what was queued and fails the reader with the reason', async () => {
  const { response, aborted } = drive(200, ['{"type":"token","ids":[1],"text":"a"}\n{"type":"token","ids":[2],"text":"b"}\n'], false);
  await response.firstToken;
  const reason = new AppError('CANCELLED', 'the client went away');
  response.abort(reason);
  assert.deepEqual(aborted, [reason]);
  assert.throws(() => response.next(), (e: unknown) => e === reason);
});

test('a cancellation tells its one listener once, with the first reason', () => {
  const cancel = new Cancel();
  const told: string[] = [];
  cancel.onAbort((r) => told.push(`first ${r.code}`));
  cancel.onAbort((r) => told.push(`second ${r.code}`));
  cancel.abort(new AppError('WORKER_TIMEOUT', 'slow'));
  cancel.abort(new AppError('CANCELLED', 'gone'));
  assert.deepEqual(told, ['second WORKER_TIMEOUT']);
  assert.equal(cancel.reason?.code, 'WORKER_TIMEOUT');
  const quiet = new Cancel();
  quiet.onAbort(() => told.push('never'));
  quiet.onAbort(null);
  quiet.abort(new AppError('CANCELLED', 'gone'));
  assert.equal(told.length, 1);
});
