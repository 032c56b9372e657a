import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GenerateEventSchema, GenerateRequestSchema, ndjsonLine, type GenerateEvent } from '../../src/shared/protocol.js';

test('a minimal request gets ChatGLM3 sampling defaults', () => {
  const r = GenerateRequestSchema.parse({ id: 'a', messages: [{ role: 'user', content: 'hi' }], max_tokens: 8 });
  assert.equal(r.temperature, 0.8);
  assert.equal(r.top_p, 0.8);
});

test('exactly one prompt form, and garbage is rejected with a path', () => {
  const base = { id: 'a', max_tokens: 4 };
  const bad: unknown[] = [
    base,
    { ...base, messages: [], prompt: 'x' },
    { ...base, prompt: 'x', prompt_ids: [1] },
    { ...base, messages: [{ role: 'tool', content: 'x' }] },
    { ...base, prompt_ids: [-1] },
    { ...base, prompt: 'x', max_tokens: 0 },
    { ...base, prompt: 'x', temperature: -1 },
    { ...base, prompt: 'x', top_p: 0 },
    { ...base, prompt: 'x', logprobs: 21 },
    { ...base, prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] },
    { ...base, prompt: 'x', extra: true },
    { ...base, prompt: 'x', tenant: '' },
    { ...base, prompt: 'x', tenant: 'x'.repeat(257) },
    { ...base, prompt: 'x', tenant: 7 },
    { ...base, prompt: 'x', tier: '' },
    { ...base, prompt: 'x', tier: 't'.repeat(65) },
    { ...base, prompt: 'x', tier: ['pro'] },
    null,
    'string',
    [1, 2],
  ];
  for (const b of bad) {
    const r = GenerateRequestSchema.safeParse(b);
    assert.equal(r.success, false, JSON.stringify(b));
  }
});

test('tenant and tier are optional and kept as given', () => {
  const r = GenerateRequestSchema.parse({ id: 'a', prompt: 'x', max_tokens: 4, tenant: 'acme', tier: 'pro' });
  assert.equal(r.tenant, 'acme');
  assert.equal(r.tier, 'pro');
  const bad = GenerateRequestSchema.safeParse({ id: 'a', prompt: 'x', max_tokens: 4, tier: '' });
  assert.deepEqual(bad.success ? null : bad.error.issues[0]!.path, ['tier']);
});

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
