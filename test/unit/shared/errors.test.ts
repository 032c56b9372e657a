import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppError, ERROR_STATUS, errorEnvelope, fromEnvelope, paramOf } from '../../../src/shared/errors.js';

test('each code has one status and the envelope is OpenAI-shaped', () => {
  const err = new AppError('CONTEXT_LENGTH_EXCEEDED', 'too long', { param: 'messages' });
  assert.equal(err.status, 400);
  assert.equal(err.isClientError, true);
  assert.deepEqual(errorEnvelope(err), {
    error: { message: 'too long', type: 'invalid_request_error', code: 'context_length_exceeded', param: 'messages' },
  });
  assert.equal(errorEnvelope(new AppError('RATE_LIMITED', 'x')).error.type, 'rate_limit_error');
  assert.equal(errorEnvelope(new AppError('INVALID_API_KEY', 'x')).error.type, 'authentication_error');
  assert.equal(new AppError('BREAKER_OPEN', 'x').isClientError, false);
  for (const [code, status] of Object.entries(ERROR_STATUS)) {
    assert.match(code, /^[A-Z][A-Z_]*$/);
    assert.ok(status >= 400 && status < 600);
  }
});

test('envelopes read back; garbage becomes the fallback code', () => {
  assert.equal(fromEnvelope({ error: { code: 'overloaded', message: 'full' } }).code, 'OVERLOADED');
  for (const junk of [null, 42, 'x', {}, { error: null }, { error: { code: 7 } }, { error: { code: 'no_such_code' } }]) {
    const e = fromEnvelope(junk);
    assert.equal(e.code, 'WORKER_ERROR');
    assert.equal(typeof e.message, 'string');
  }
  assert.equal(paramOf([]), null);
  assert.equal(paramOf(['messages', 0, 'content']), 'messages.0.content');
});
