import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chatCompletionsFormat, chatFormat, completionsFormat, deltaTemplate, type AnswerMeta } from '../../../../src/gateway/answer/formats.js';

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
