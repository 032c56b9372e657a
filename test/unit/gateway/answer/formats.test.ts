import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chatCompletionsFormat, chatFormat, completionsFormat, deltaTemplate, type AnswerFormat, type AnswerMeta, type AnswerResult } from '../../../../src/gateway/answer/formats.js';
import { answerJson, isPlainAnswer } from '../../../../src/gateway/answer/body-json.js';

const TEXTS = ['', '借款', '"quoted" \\ back\\slash', 'line\nbreak\ttab', '\u0000\u001f control', '😀 \ud800 lone surrogate', '</script>', 'text\u0000text\u0000'];

test('a streamed text delta from the template is byte for byte the format\'s own frame', () => {
  const metas: AnswerMeta[] = [
    { id: 'chatcmpl-1', created: 1700000000, model: 'law-lora', adapter: 'law-lora', degraded: false, sources: null, includeUsage: true, logprobs: false },
    { id: 'x"y', created: 1, model: 'm\u0000"', adapter: null, degraded: false, sources: [{ id: 'kb-1', question: '借钱不还怎么办', score: 42.5 }], includeUsage: false, logprobs: false },
  ];
  for (const format of [chatFormat, chatCompletionsFormat, completionsFormat]) {
    for (const meta of metas) {
      const { before, after } = deltaTemplate(format, meta);
      for (const text of TEXTS) {
        assert.equal(before + JSON.stringify(text) + after, `data: ${JSON.stringify(format.delta(meta, text, undefined, 7))}\n\n`, `${format.idPrefix} ${JSON.stringify(text)}`);
      }
    }
  }
});

const FORMATS: AnswerFormat[] = [chatFormat, chatCompletionsFormat, completionsFormat];
const plainMeta = (over: Partial<AnswerMeta> = {}): AnswerMeta => ({ id: 'chatcmpl-1', created: 1764000000, model: 'chatglm3-6b', adapter: null, degraded: false, sources: null, includeUsage: false, logprobs: false, ...over });

test('a plain answer body written from its compiled schema is byte for byte JSON.stringify of the body, and fits the schema', () => {
  const metas = [plainMeta(), plainMeta({ id: 'x"y\\z\u0000', model: 'm😀\ud800', adapter: 'law-lora', created: 0 })];
  for (const format of FORMATS) {
    for (const meta of metas) {
      for (const text of [...TEXTS, '长'.repeat(5000), 'a'.repeat(41), 'a'.repeat(42)]) {
        for (const finish of ['stop', 'length', 'cancelled'] as const) {
          const result = { text, finish, usage: { prompt_tokens: 38, completion_tokens: 2 ** 31 }, logprobs: [] };
          assert.equal(isPlainAnswer(meta, result), true);
          const body = format.body(meta, result);
          assert.equal(answerJson(format, meta, result), JSON.stringify(body), `${format.idPrefix} ${JSON.stringify(text).slice(0, 40)} ${finish}`);
          // The schema describes the body exactly: a field added to body() and not to plainBody fails here.
          assert.deepEqual(format.plainBody.parse(body), body);
        }
      }
    }
  }
});

test('an answer that is not plain keeps every field: degradation, sources, logprobs and tool calls are written', () => {
  const lp = { token: '借', id: 5, logprob: -0.1, bytes: [229, 128, 159], top_logprobs: [{ token: '借', id: 5, logprob: -0.1, bytes: [229, 128, 159] }] };
  const result: AnswerResult = { text: '借款', finish: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1 }, logprobs: [lp] };
  const calls = [{ id: 'call_7', type: 'function' as const, function: { name: 'lookup', arguments: '{}' } }];
  // What marks the field in the text, and the formats whose bodies carry it.
  const cases: [AnswerMeta, AnswerResult, string, AnswerFormat[]][] = [
    [plainMeta({ degraded: { source: 'canned', reason: 'breaker_open' } }), result, 'breaker_open', FORMATS],
    [plainMeta({ sources: [{ id: 'kb-9', question: '借钱', score: 1.5 }] }), result, 'kb-9', [chatFormat, chatCompletionsFormat]],
    [plainMeta({ logprobs: true }), result, '-0.1', [chatCompletionsFormat, completionsFormat]],
    [plainMeta(), { ...result, toolCalls: calls }, 'call_7', [chatCompletionsFormat]],
  ];
  for (const [meta, r, mark, carriers] of cases) {
    assert.equal(isPlainAnswer(meta, r), false);
    for (const format of carriers) {
      const json = answerJson(format, meta, r);
      assert.equal(json, JSON.stringify(format.body(meta, r)));
      assert.ok(json.includes(mark), `${format.idPrefix}: ${mark} in ${json}`);
    }
  }
});
