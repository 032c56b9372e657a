import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ndjsonLine } from '../../../src/protocol/ndjson.js';
import { GenerateEventSchema, GenerateRequestSchema, MAX_METADATA_CHARS, MAX_TURNS, type GenerateEvent } from '../../../src/protocol/schemas.js';

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

test('turns and answer_metadata: accepted as a prompt form of their own', () => {
  const turns = [
    { role: 'system', metadata: '', content: 'tools' },
    { role: 'user', metadata: '', content: '北京天气' },
    { role: 'assistant', metadata: 'get_weather', content: "```python\ntool_call(city='北京')\n```" },
    { role: 'observation', metadata: '', content: '{"temperature": 3}' },
  ];
  const r = GenerateRequestSchema.parse({ id: 'a', turns, max_tokens: 8 });
  assert.deepEqual(r.turns, turns);
  const named = GenerateRequestSchema.parse({ id: 'a', turns: turns.slice(0, 2), answer_metadata: 'get_weather', max_tokens: 8 });
  assert.equal(named.answer_metadata, 'get_weather');
  const onMessages = GenerateRequestSchema.parse({ id: 'a', messages: [{ role: 'user', content: 'x' }], answer_metadata: 'f', max_tokens: 8 });
  assert.equal(onMessages.answer_metadata, 'f');
  const longest = GenerateRequestSchema.safeParse({ id: 'a', turns: [{ role: 'user', metadata: 'm'.repeat(MAX_METADATA_CHARS), content: '' }], max_tokens: 1 });
  assert.ok(longest.success);
});

test('turns and answer_metadata garbage is refused with the field at fault', () => {
  const base = { id: 'a', max_tokens: 4 };
  const turn = { role: 'user', metadata: '', content: 'x' };
  const cases: Array<[unknown, string]> = [
    [{ ...base, turns: [] }, 'turns'],
    [{ ...base, turns: 'x' }, 'turns'],
    [{ ...base, turns: [null] }, 'turns.0'],
    [{ ...base, turns: [{ ...turn, role: 'tool' }] }, 'turns.0.role'],
    [{ ...base, turns: [{ ...turn, role: 'developer' }] }, 'turns.0.role'],
    [{ ...base, turns: [turn, { role: 'user', content: 'x' }] }, 'turns.1.metadata'],
    [{ ...base, turns: [{ ...turn, metadata: 7 }] }, 'turns.0.metadata'],
    [{ ...base, turns: [{ ...turn, metadata: 'a\nb' }] }, 'turns.0.metadata'],
    [{ ...base, turns: [{ ...turn, metadata: 'a\rb' }] }, 'turns.0.metadata'],
    [{ ...base, turns: [{ ...turn, metadata: 'm'.repeat(MAX_METADATA_CHARS + 1) }] }, 'turns.0.metadata'],
    [{ ...base, turns: [{ ...turn, content: null }] }, 'turns.0.content'],
    [{ ...base, turns: [{ ...turn, extra: 1 }] }, 'turns.0'],
    [{ ...base, turns: Array.from({ length: MAX_TURNS + 1 }, () => turn) }, 'turns'],
    [{ ...base, turns: [turn], messages: [{ role: 'user', content: 'x' }] }, 'turns'],
    [{ ...base, turns: [turn], prompt: 'x' }, 'prompt'],
    [{ ...base, turns: [turn], prompt_ids: [1] }, 'prompt_ids'],
    [{ ...base }, 'messages'],
    [{ ...base, prompt: 'x', answer_metadata: 'f' }, 'answer_metadata'],
    [{ ...base, prompt_ids: [1], answer_metadata: 'f' }, 'answer_metadata'],
    [{ ...base, turns: [turn], answer_metadata: 'a\nb' }, 'answer_metadata'],
    [{ ...base, turns: [turn], answer_metadata: 5 }, 'answer_metadata'],
    [{ ...base, turns: [turn], answer_metadata: 'm'.repeat(MAX_METADATA_CHARS + 1) }, 'answer_metadata'],
  ];
  for (const [body, field] of cases) {
    const r = GenerateRequestSchema.safeParse(body);
    assert.equal(r.success, false, JSON.stringify(body).slice(0, 200));
    if (!r.success) assert.equal(r.error.issues[0]!.path.join('.'), field, JSON.stringify(body).slice(0, 200));
  }
});

test('segment events and token events with a segment round-trip; garbage segments are refused', () => {
  const events = [
    { type: 'segment', index: 0, metadata: 'get_weather' },
    { type: 'token', ids: [5], text: '`', segment: 0 },
    { type: 'token', ids: [], text: '', segment: 1 },
  ] satisfies GenerateEvent[];
  for (const e of events) assert.deepEqual(GenerateEventSchema.parse(JSON.parse(ndjsonLine(e))), e);
  for (const bad of [
    { type: 'segment', index: -1, metadata: '' },
    { type: 'segment', index: 0.5, metadata: '' },
    { type: 'segment', index: 0 },
    { type: 'segment', metadata: 'x' },
    { type: 'segment', index: '0', metadata: 'x' },
    { type: 'token', ids: [1], text: 'x', segment: -1 },
    { type: 'token', ids: [1], text: 'x', segment: 'a' },
  ]) {
    assert.equal(GenerateEventSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});
