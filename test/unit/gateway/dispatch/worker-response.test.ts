import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Dispatcher } from 'undici';
import { Cancel } from '../../../../src/gateway/dispatch/cancel.js';
import { WorkerResponse, eventError } from '../../../../src/gateway/dispatch/worker-response.js';
import { AppError } from '../../../../src/shared/errors.js';


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

test('worker error codes: client errors and OVERLOADED keep theirs, the rest are WORKER_ERROR', () => {
  assert.equal(eventError({ code: 'context_length_exceeded', message: 'x' }).code, 'CONTEXT_LENGTH_EXCEEDED');
  assert.equal(eventError({ code: 'overloaded', message: 'x' }).code, 'OVERLOADED');
  assert.equal(eventError({ code: 'internal', message: 'x' }).code, 'WORKER_ERROR');
  assert.equal(eventError({ code: 'no_such_code', message: 'x' }).code, 'WORKER_ERROR');
});

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
