import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ChatGLMTokenizer } from '../../../../src/tokenizer/tokenizer.js';
import type { ChatMessage } from '../../../../src/protocol/schemas.js';
import { promptTokens, tokenizerCounter, UPPER_BOUND_COUNTER } from '../../../../src/gateway/limiter/prompt-tokens.js';
import { GOLDEN_TINY_DIR, GOLDEN_TOKENIZER_DIR } from '../../../helpers/paths.js';

let tokenizers: ChatGLMTokenizer[];

before(async () => {
  tokenizers = await Promise.all([
    ChatGLMTokenizer.fromFile(join(GOLDEN_TINY_DIR, 'tokenizer.model')),
    ChatGLMTokenizer.fromFile(join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model')),
  ]);
});

/** Texts that make SentencePiece work hard: rare characters fall back to one piece per byte. */
function texts(): string[] {
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const out = ['', ' ', '\n', '借款合同纠纷怎么起诉？', 'Hello, world!', '  leading  spaces  ', '𠜎𠜱𠝹 emoji 😀👍🏽', '\ud800 lone', '<|user|> [gMASK] sop', 'ﷺ ﬁ ｈｅｌｌｏ'];
  for (let i = 0; i < 200; i++) {
    let s = '';
    const len = rand(40);
    for (let j = 0; j < len; j++) {
      const pick = rand(4);
      const code = pick === 0 ? 0x20 + rand(0x5f) : pick === 1 ? 0x4e00 + rand(0x5000) : pick === 2 ? 0x80 + rand(0x700) : 0x1f300 + rand(0x300);
      s += String.fromCodePoint(code);
    }
    out.push(s);
  }
  return out;
}

test('the upper bound is never below the tokenizer count', () => {
  for (const tokenizer of tokenizers) {
    const exact = tokenizerCounter(tokenizer);
    const all = texts();
    for (const t of all) {
      assert.ok(UPPER_BOUND_COUNTER.text(t) >= exact.text(t), JSON.stringify(t));
      const messages: ChatMessage[] = [
        { role: 'system', content: t },
        { role: 'user', content: t.split('').reverse().join('') },
      ];
      const turns = messages.map((m) => ({ ...m, metadata: '' }));
      assert.ok(UPPER_BOUND_COUNTER.chat(turns) >= exact.chat(turns), JSON.stringify(t));
      // The count is the template's, whether the contents are cached yet or not.
      assert.equal(exact.chat(turns), tokenizer.applyChatTemplate(messages).length, JSON.stringify(t));
      assert.equal(exact.chat(turns), tokenizer.applyChatTemplate(messages).length, JSON.stringify(t));
      // Tool turns: metadata lines, observations, and an answer whose metadata line is pre-written.
      const tools = [
        { role: 'assistant' as const, metadata: t.slice(0, 20), content: t },
        { role: 'observation' as const, metadata: '', content: t.slice(3) },
      ];
      const meta = t.slice(0, 10).replace(/[\r\n]/g, '');
      assert.equal(exact.chat(tools, meta), tokenizer.encodeTurns(tools, { answerMetadata: meta }).length, JSON.stringify(t));
      assert.ok(UPPER_BOUND_COUNTER.chat(tools, meta) >= exact.chat(tools, meta), JSON.stringify(t));
    }
  }
});

test('counts follow the worker: chat template, [gMASK] sop + a raw prompt, prompt ids as given', () => {
  const tokenizer = tokenizers[0]!;
  const exact = tokenizerCounter(tokenizer);
  const messages: ChatMessage[] = [{ role: 'user', content: '朋友借钱不还怎么办？' }];
  assert.equal(promptTokens({ id: 'a', messages, max_tokens: 1 }, exact), tokenizer.applyChatTemplate(messages).length);
  assert.equal(promptTokens({ id: 'b', prompt: '合同', max_tokens: 1 }, exact), 2 + tokenizer.encode('合同').length);
  assert.equal(promptTokens({ id: 'c', prompt_ids: [5, 6, 7], max_tokens: 1 }, exact), 3);
  assert.equal(promptTokens({ id: 'd', prompt_ids: [5, 6, 7], max_tokens: 1 }, UPPER_BOUND_COUNTER), 3);
});
