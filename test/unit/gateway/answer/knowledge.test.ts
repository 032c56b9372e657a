import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { ChatMessage } from '../../../../src/protocol/schemas.js';
import { chatFormat } from '../../../../src/gateway/answer/formats.js';
import { entryBlock, KNOWLEDGE_PREAMBLE, KnowledgeAugmenter, knowledgeTurn, type KnowledgeSettings } from '../../../../src/gateway/answer/knowledge.js';
import type { AnswerPlan } from '../../../../src/gateway/answer/pipeline.js';
import { KnowledgeBase } from '../../../../src/gateway/fallback/knowledge-base.js';
import { tokenizerCounter, UPPER_BOUND_COUNTER, type TokenCounter } from '../../../../src/gateway/limiter/prompt-tokens.js';
import type { KnowledgeEntry } from '../../../../src/shared/knowledge-entry.js';
import { ChatGLMTokenizer } from '../../../../src/tokenizer/tokenizer.js';
import { GOLDEN_TOKENIZER_DIR } from '../../../helpers/paths.js';

const ENTRIES: KnowledgeEntry[] = [
  { id: 'kb-deposit', title: '房东不退押金怎么办', question: '租期到了房东扣押金', reply: '可以协商，协商不成向法院起诉要求退还押金。', source: '《民法典》第七百零三条' },
  { id: 'kb-deposit-2', title: '押金被中介扣了怎么办', question: '', reply: '向住建部门投诉中介。' },
  { id: 'kb-wage', title: '公司拖欠工资怎么办', question: '三个月没发工资', reply: '向劳动争议仲裁委员会申请仲裁。' },
  { id: 'kb-long', title: '离婚财产怎么分割', question: '', reply: '夫妻共同财产'.repeat(400) },
];

const SETTINGS: KnowledgeSettings = { augment: 'off', topK: 3, minScore: 1, maxPromptTokens: 1024 };

function counterOf(counter: TokenCounter) {
  return (m: ChatMessage) => counter.chat([{ ...m, metadata: '' }]) - counter.chat([]);
}

function plan(question: string, history: ChatMessage[] = []): AnswerPlan {
  return {
    route: 'chat',
    tools: null,
    format: chatFormat,
    model: 'm',
    adapter: undefined,
    generate: { id: 'r1', max_tokens: 16, messages: [...history, { role: 'user', content: question }] },
    question,
    stream: false,
    includeUsage: true,
    logprobs: false,
  };
}

test('asked for, the best entries go into one system turn right before the question, named as sources', () => {
  const augmenter = new KnowledgeAugmenter(new KnowledgeBase(ENTRIES), counterOf(UPPER_BOUND_COUNTER), SETTINGS);
  const history: ChatMessage[] = [
    { role: 'system', content: '你是法律助手' },
    { role: 'user', content: '你好' },
    { role: 'assistant', content: '你好，请问有什么法律问题？' },
  ];
  const p = augmenter.augment(plan('押金', history), true);
  const messages = p.generate.messages!;
  assert.equal(messages.length, 5);
  assert.deepEqual(messages.slice(0, 3), history, 'the conversation before stays as it was (a shared prefix)');
  assert.equal(messages[3]!.role, 'system');
  assert.deepEqual(messages[4], { role: 'user', content: '押金' });
  assert.deepEqual(p.sources!.map((s) => s.id), ['kb-deposit', 'kb-deposit-2']);
  assert.equal(p.sources![0]!.question, '房东不退押金怎么办');
  assert.ok(p.sources![0]!.score > p.sources![1]!.score);
  assert.equal(messages[3]!.content, knowledgeTurn([entryBlock(ENTRIES[0]!), entryBlock(ENTRIES[1]!)]));
  assert.equal(
    messages[3]!.content,
    `${KNOWLEDGE_PREAMBLE}\n\n[kb-deposit]\n问：房东不退押金怎么办\n补充：租期到了房东扣押金\n答：可以协商，协商不成向法院起诉要求退还押金。\n来源：《民法典》第七百零三条\n\n[kb-deposit-2]\n问：押金被中介扣了怎么办\n答：向住建部门投诉中介。`,
  );
});

test('off by default, on by configuration; false, true and limits per request', () => {
  const kb = new KnowledgeBase(ENTRIES);
  const off = new KnowledgeAugmenter(kb, counterOf(UPPER_BOUND_COUNTER), SETTINGS);
  for (const choice of [undefined, null, false] as const) {
    const p = off.augment(plan('押金'), choice);
    assert.equal(p.sources, undefined, String(choice));
    assert.equal(p.generate.messages!.length, 1);
  }
  const on = new KnowledgeAugmenter(kb, counterOf(UPPER_BOUND_COUNTER), { ...SETTINGS, augment: 'on' });
  assert.equal(on.augment(plan('押金'), undefined).sources!.length, 2);
  assert.equal(on.augment(plan('押金'), null).sources!.length, 2);
  assert.equal(on.augment(plan('押金'), false).sources, undefined);
  assert.deepEqual(off.augment(plan('押金'), { top_k: 1 }).sources!.map((s) => s.id), ['kb-deposit']);
  const best = off.augment(plan('押金'), {}).sources!;
  assert.deepEqual(off.augment(plan('押金'), { min_score: best[1]!.score + 0.001 }).sources!.map((s) => s.id), ['kb-deposit']);
  // Entries with all the words compete first, as for the fallback's best match.
  assert.deepEqual(off.augment(plan('房东不退押金'), true).sources!.map((s) => s.id), ['kb-deposit']);
});

test('no entry above min_score: nothing is added and sources are empty', () => {
  const augmenter = new KnowledgeAugmenter(new KnowledgeBase(ENTRIES), counterOf(UPPER_BOUND_COUNTER), SETTINGS);
  for (const [question, choice] of [
    ['今天天气怎么样', true],
    ['押金', { min_score: 10_000 }],
  ] as const) {
    const p = augmenter.augment(plan(question), choice);
    assert.deepEqual(p.sources, []);
    assert.deepEqual(p.generate.messages, [{ role: 'user', content: question }]);
  }
  const empty = new KnowledgeAugmenter(new KnowledgeBase([]), counterOf(UPPER_BOUND_COUNTER), SETTINGS);
  assert.deepEqual(empty.augment(plan('押金'), true).sources, []);
});

test('the turn stays within the token budget, with the tokenizer and with its upper bound', async () => {
  const tokenizer = await ChatGLMTokenizer.fromFile(join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model'));
  const kb = new KnowledgeBase([...ENTRIES, ...Array.from({ length: 12 }, (_, i) => ({ id: `kb-p${i}`, title: `押金纠纷第${i}种情况`, question: '', reply: '押金'.repeat(20 + i * 10) }))]);
  for (const counter of [tokenizerCounter(tokenizer), UPPER_BOUND_COUNTER]) {
    const count = counterOf(counter);
    let last = -1;
    for (const budget of [80, 150, 300, 600, 2000]) {
      const augmenter = new KnowledgeAugmenter(kb, count, { ...SETTINGS, maxPromptTokens: budget });
      // 押金 is in nearly every entry here, so its scores are low: no threshold.
      const p = augmenter.augment(plan('押金'), { top_k: 8, min_score: 0 });
      const turn = p.generate.messages!.find((m) => m.role === 'system');
      if (p.sources!.length > 0) assert.ok(count(turn!) <= budget, `${count(turn!)} > ${budget}`);
      assert.ok(p.sources!.length >= last, 'a larger budget holds at least as many entries');
      last = p.sources!.length;
      for (const s of p.sources!) assert.ok(turn!.content.includes(`[${s.id}]`), s.id);
    }
    assert.ok(last >= 6, `2,000 tokens hold several entries (${last})`);
  }
});

test('a first entry too long for the budget alone is cut; one that cannot be cut usefully is left out', () => {
  const count = counterOf(UPPER_BOUND_COUNTER);
  const augmenter = new KnowledgeAugmenter(new KnowledgeBase(ENTRIES), count, { ...SETTINGS, maxPromptTokens: 400 });
  const p = augmenter.augment(plan('离婚财产分割'), true);
  assert.deepEqual(p.sources!.map((s) => s.id), ['kb-long']);
  const turn = p.generate.messages![0]!;
  assert.ok(count(turn) <= 400);
  assert.match(turn.content, /\[kb-long\]\n问：离婚财产怎么分割\n答：(夫妻共同财产)+.*……$/s);
  assert.ok(turn.content.length < ENTRIES[3]!.reply.length);
  // Less than the preamble and a few characters: nothing.
  const tiny = new KnowledgeAugmenter(new KnowledgeBase(ENTRIES), count, { ...SETTINGS, maxPromptTokens: 100 });
  const q = tiny.augment(plan('离婚财产分割'), true);
  assert.deepEqual(q.sources, []);
  assert.equal(q.generate.messages!.length, 1);
});

test('a question of a megabyte is searched by its start', () => {
  const augmenter = new KnowledgeAugmenter(new KnowledgeBase(ENTRIES), counterOf(UPPER_BOUND_COUNTER), SETTINGS);
  const t0 = performance.now();
  const p = augmenter.augment(plan(`公司拖欠工资${'怎么办'.repeat(300_000)}`), true);
  assert.deepEqual(p.sources!.map((s) => s.id), ['kb-wage']);
  assert.ok(performance.now() - t0 < 2000, 'far from the seconds a whole megabyte takes to segment');
  assert.deepEqual(augmenter.augment(plan(`${'xyz '.repeat(600)}公司拖欠工资`), true).sources, [], 'words past the start are not searched');
});

test('a conversation with tools gets the knowledge turn right before its last user turn, calls and results after it untouched', () => {
  const augmenter = new KnowledgeAugmenter(new KnowledgeBase(ENTRIES), counterOf(UPPER_BOUND_COUNTER), SETTINGS);
  const turns = [
    { role: 'system' as const, metadata: '', content: 'tools...' },
    { role: 'user' as const, metadata: '', content: '房东不退押金怎么办' },
    { role: 'assistant' as const, metadata: 'get_statute', content: "```python\ntool_call(law='民法典')\n```" },
    { role: 'observation' as const, metadata: '', content: '{"text": "..."}' },
  ];
  const p = plan('房东不退押金怎么办');
  delete p.generate.messages;
  p.generate.turns = turns;
  augmenter.augment(p, true);
  const out = p.generate.turns!;
  assert.equal(out.length, turns.length + 1);
  assert.deepEqual(out[0], turns[0]);
  assert.equal(out[1]!.role, 'system');
  assert.equal(out[1]!.metadata, '');
  assert.ok(out[1]!.content.startsWith(KNOWLEDGE_PREAMBLE) && out[1]!.content.includes('[kb-deposit]'));
  assert.deepEqual(out.slice(2), turns.slice(1));
  assert.ok(p.sources!.some((s) => s.id === 'kb-deposit'));
  assert.equal(p.generate.messages, undefined);
});
