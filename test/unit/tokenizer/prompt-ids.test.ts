import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GenerateRequestSchema } from '../../../src/protocol/schemas.js';
import { chatTurnsOf, promptIdsOf } from '../../../src/tokenizer/prompt-ids.js';
import { buildToolPrompt } from '../../../src/tokenizer/tool-template.js';
import { ChatGLMTokenizer } from '../../../src/tokenizer/tokenizer.js';
import { FIXTURE_TOKENIZER_MODEL, readTokenizerGolden, readToolsGolden } from '../../helpers/golden-fixtures.js';

const tok = await ChatGLMTokenizer.fromFile(FIXTURE_TOKENIZER_MODEL);

test('messages and the same messages as turns give the golden chat ids', () => {
  const golden = readTokenizerGolden();
  assert.ok(golden.chat.length > 0);
  for (const c of golden.chat) {
    assert.deepEqual(promptIdsOf(tok, { messages: c.messages }), c.input_ids);
    const turns = chatTurnsOf({ messages: c.messages })!;
    assert.deepEqual(promptIdsOf(tok, { turns: [...turns] }), c.input_ids);
  }
});

test('a request with tools, sent as turns, gives the golden ids of the reference tokenizer code', () => {
  const golden = readToolsGolden();
  for (const c of golden.render) {
    const prompt = buildToolPrompt(c.request);
    assert.ok(prompt.ok);
    // Through the wire schema, as the worker receives it.
    const req = GenerateRequestSchema.parse({ id: 'x', turns: prompt.value.turns, max_tokens: 1 });
    assert.deepEqual(promptIdsOf(tok, req), c.input_ids);
  }
});

test('answer_metadata is written after <|assistant|>; prompt gets [gMASK] sop; prompt_ids stay as given', () => {
  const turns = [{ role: 'user' as const, metadata: '', content: '北京天气' }];
  const named = promptIdsOf(tok, { turns, answer_metadata: 'get_weather' });
  assert.deepEqual(named, [...tok.encodeTurns(turns), ...tok.encode('get_weather\n')]);
  const s = tok.specialTokens;
  assert.deepEqual(promptIdsOf(tok, { prompt: '你好' }), [s['[gMASK]'], s.sop, ...tok.encode('你好')]);
  const ids = [5, 6, 7];
  const out = promptIdsOf(tok, { prompt_ids: ids });
  assert.deepEqual(out, ids);
  assert.notEqual(out, ids, 'a copy: the caller may change it');
  assert.equal(chatTurnsOf({ prompt: 'x' }), undefined);
});
