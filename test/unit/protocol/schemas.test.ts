import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GenerateRequestSchema } from '../../../src/protocol/schemas.js';

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
    null,
    'string',
    [1, 2],
  ];
  for (const b of bad) {
    const r = GenerateRequestSchema.safeParse(b);
    assert.equal(r.success, false, JSON.stringify(b));
  }
});

