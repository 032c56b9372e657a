import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FallbackAnswerer, KnowledgeBase, loadCannedAnswers, loadFallback, segmentWords } from '../../../../src/gateway/fallback/knowledge-base.js';
import { loadKnowledgeEntries, type KnowledgeSkip } from '../../../../src/data/knowledge-base.js';
import { KB_FIXTURE } from '../../../helpers/gateway.js';

test('Chinese text is segmented into jieba’s words, punctuation and spaces dropped', () => {
  assert.deepEqual(segmentWords('公司拖欠工资，怎么办？'), ['公司', '拖欠工资', '怎么办']);
  assert.deepEqual(segmentWords('劳动合同法 规定的经济补偿和诉讼时效'), ['劳动', '合同法', '规定', '的', '经济', '补偿', '和', '诉讼时效']);
  assert.deepEqual(segmentWords('处3-5年，C++ 与 AT&T'), ['处', '3', '5', '年', 'C++', '与', 'AT&T']);
  assert.deepEqual(segmentWords('  ，。！'), []);
});

test('a long text is segmented whole, to the words of its sentences; surrogate pairs stay whole', () => {
  const sentences = Array.from({ length: 60 }, (_, i) => `第${i}次公司拖欠工资，房东不退押金怎么办？`);
  const long = sentences.join('');
  assert.ok(long.length > 1200);
  assert.deepEqual(segmentWords(long), sentences.flatMap((s) => segmentWords(s)));
  const emoji = '😀'.repeat(1_000);
  assert.deepEqual(segmentWords(`${emoji}押金`).slice(-1), ['押金'], 'no surrogate pair is cut in two');
  assert.ok(segmentWords(emoji).every((w) => w === '😀'));
});

test('the best match answers with its question and score; the canned text below minScore', async () => {
  const problems: KnowledgeSkip[] = [];
  const entries = await loadKnowledgeEntries(KB_FIXTURE, { onSkip: (s) => problems.push(s) });
  assert.equal(problems.length, 0);
  const kb = new KnowledgeBase(entries);
  assert.equal(kb.size, 10);
  assert.equal(kb.best('房东不退押金怎么办')!.entry.id, 'kb-5');
  assert.equal(kb.best('父亲去世没有遗嘱，遗产谁继承')!.entry.id, 'kb-7');
  assert.equal(kb.best('xyzzy'), null);
  const answerer = new FallbackAnswerer(kb, loadCannedAnswers(''), 20);
  const hit = answerer.answer('房东不退押金怎么办', 'kb', 'breaker_open');
  assert.equal(hit.degraded.source, 'kb');
  assert.match(hit.text, /押金/);
  const weak = answerer.answer('今天天气怎么样', 'kb', 'timeout');
  assert.equal(weak.degraded.source, 'canned');
  assert.equal(weak.degraded.reason, 'timeout');
  assert.match(weak.text, /知识库中暂时没有/);
  assert.deepEqual(answerer.answer('房东不退押金', 'canned', 'forced').degraded, { source: 'canned', reason: 'forced' });
});

test('garbage in the knowledge base and canned files is reported with its place', async (ctx) => {
  const dir = mkdtempSync(join(tmpdir(), 'kb-test-'));
  ctx.after(() => {
      rmSync(dir, { recursive: true, force: true });
  });
  const jsonl = join(dir, 'kb.jsonl');
  writeFileSync(jsonl, '{"id":"a","title":"借款","reply":"还钱"}\nnot json\n{"id":"b"}\n\n[1,2]\n{"id":"a","title":"重复","reply":"同一个 id"}\n');
  const skips: KnowledgeSkip[] = [];
  const entries = await loadKnowledgeEntries(jsonl, { onSkip: (s) => skips.push(s) });
  assert.deepEqual(entries.map((e) => e.id), ['a']);
  assert.deepEqual(skips.map((p) => p.line), [2, 3, 5, 6]);
  assert.equal(new KnowledgeBase([...entries, { ...entries[0]!, title: '重复' }]).size, 1, 'a repeated id is indexed once');

  const canned = join(dir, 'canned.json');
  writeFileSync(canned, '{"unavailable": ""}');
  assert.throws(() => loadCannedAnswers(canned), /canned\.json: unavailable:/);
  writeFileSync(canned, '{"unavailable": "稍后再试", "extra": 1}');
  assert.throws(() => loadCannedAnswers(canned), /canned\.json/);
  writeFileSync(canned, '{oops');
  assert.throws(() => loadCannedAnswers(canned), /canned\.json/);
  assert.throws(() => loadCannedAnswers(join(dir, 'missing.json')), /missing\.json/);
  writeFileSync(canned, '{"unavailable": "稍后再试"}');
  assert.equal(loadCannedAnswers(canned).unavailable, '稍后再试');
  assert.match(loadCannedAnswers(canned).noMatch, /12348/);

  const fb = await loadFallback({ path: jsonl, cannedPath: canned, minScore: 0 });
  assert.match(fb.warnings[0]!, /4 bad lines skipped \(first: line 2/);
  assert.equal(fb.answerer.answer('借款', 'canned', 'forced').text, '稍后再试');
  const missing = await loadFallback({ path: join(dir, 'nope.jsonl'), cannedPath: '', minScore: 0 });
  assert.match(missing.warnings[0]!, /not found: the fallback gives canned answers only/);
  assert.match(missing.answerer.answer('借款', 'kb', 'forced').text, /暂时繁忙/, 'an empty knowledge base gives the unavailable text');
});

test('common words do not drown the informative ones; answers are cached per question', () => {
  const entries = Array.from({ length: 50 }, (_, i) => ({
    id: `c${i}`,
    title: `问题${i}怎么办`,
    question: i === 17 ? '工伤认定需要哪些材料，怎么办' : `第${i}个普通问题怎么办`,
    reply: `答复${i}`,
  }));
  const kb = new KnowledgeBase(entries);
  const hit = kb.best('工伤认定怎么办？');
  assert.equal(hit!.entry.id, 'c17', 'the rare words decide, not 怎么 and 办 that every entry has');
  assert.equal(kb.best('工伤认定怎么办？'), hit, 'the second time comes from the cache');
  const onlyCommon = kb.best('怎么办');
  assert.ok(onlyCommon, 'a question of common words only still finds something');
  assert.equal(kb.best('完全无关的外星词汇'), null);
});

test('garbage questions give null or a match, never an error, and leave later searches unharmed', async () => {
  const kb = new KnowledgeBase(await loadKnowledgeEntries(KB_FIXTURE));
  const legalWords = segmentWords('房东不退押金怎么办，父亲去世没有遗嘱，遗产谁继承，公司拖欠工资');
  const garbage = [
    '',
    ' ',
    '\t\n\r  \u3000',
    'a'.repeat(100_000),
    legalWords.join('').repeat(5_000).slice(0, 100_000),
    '😀'.repeat(2_000),
    '👨‍👩‍👧‍👦🇨🇳',
    '\u0000\u0001\u0002\u001f\u007f',
    '\ud800',
    '\udfff\ud800押金\ud800',
    '押金\u0001遗产',
    '__proto__',
    'constructor',
    'toString',
    '%s%d${x}<script>',
    '\u202e押金\u200b\ufeff',
  ];
  for (const q of garbage) {
    const got = kb.best(q);
    assert.ok(got === null || (typeof got.entry.id === 'string' && Number.isFinite(got.score)), `best(${JSON.stringify(q.slice(0, 20))})`);
  }
  assert.equal(kb.best(''), null);
  assert.equal(kb.best('\ud800'), null);
  assert.equal(kb.best('😀'.repeat(2_000)), null);
  assert.ok(kb.best(legalWords.join('').repeat(5_000).slice(0, 100_000)), 'a long question of known words finds something');
  assert.equal(kb.best('\udfff\ud800押金\ud800')!.entry.id, 'kb-5', 'a lone surrogate does not hide the words around it');
  // A fresh question after all of that scores as on a fresh knowledge base.
  const fresh = new KnowledgeBase(await loadKnowledgeEntries(KB_FIXTURE)).best('房东押金不退还');
  assert.deepEqual(kb.best('房东押金不退还'), fresh);
});

test('each call reports whether it came from the cache', () => {
  const seen: string[] = [];
  const kb = new KnowledgeBase([{ id: 'a', title: '房东不退押金怎么办', question: '', reply: '可以起诉' }], { onSearch: (c) => seen.push(c) });
  kb.best('押金');
  kb.best('押金');
  kb.best('遗产');
  kb.best('x'.repeat(10_000));
  kb.best('x'.repeat(10_000));
  assert.deepEqual(seen, ['miss', 'hit', 'miss', 'miss', 'miss'], 'long questions are not cached');
});

test('search lists the best matches best first: its first is what best() finds, on a generated corpus', async () => {
  const { generateKnowledgeBase, generateQuestions } = await import('../../../../bench/kb-corpus.js');
  const entries = generateKnowledgeBase(600, 11);
  const kb = new KnowledgeBase(entries, { cacheLimit: 0 });
  let compared = 0;
  for (const q of generateQuestions(entries, 200, 12)) {
    const best = kb.best(q);
    const hits = kb.search(q, 5);
    if (!best) {
      assert.deepEqual(hits, [], q);
      continue;
    }
    assert.equal(hits[0]!.entry.id, best.entry.id, q);
    assert.equal(hits[0]!.score, best.score, q);
    assert.ok(hits.length <= 5);
    assert.equal(new Set(hits.map((h) => h.entry.id)).size, hits.length, 'no entry twice');
    compared++;
  }
  assert.ok(compared > 150, `${compared} questions with a match`);
  assert.deepEqual(kb.search('zzzz qqqq', 5), [], 'no entry has the words');
  assert.deepEqual(kb.search('', 5), []);
  assert.deepEqual(kb.search('劳动合同', 0), []);
  // One word: every hit holds all of it, so the order is the score's.
  assert.deepEqual(segmentWords('劳动合同'), ['劳动合同']);
  const many = kb.search('劳动合同', 50);
  assert.ok(many.length >= 3, String(many.length));
  for (let i = 1; i < many.length; i++) assert.ok(many[i - 1]!.score >= many[i]!.score, 'best first');
  assert.deepEqual(kb.search('劳动合同', 2), many.slice(0, 2), 'the limit cuts the same list');
});
