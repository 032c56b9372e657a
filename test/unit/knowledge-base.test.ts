import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FallbackAnswerer, KnowledgeBase, loadCannedAnswers, loadFallback, segmentWords } from '../../src/gateway/knowledge-base.js';
import { loadKnowledgeEntries, type KnowledgeSkip } from '../../src/data/knowledge-base.js';
import { KB_FIXTURE } from '../helpers/gateway.js';

test('Chinese text is segmented into words, punctuation dropped', () => {
  assert.deepEqual(segmentWords('公司拖欠工资，怎么办？'), ['公司', '拖欠', '工资', '怎么', '办']);
  assert.deepEqual(segmentWords('  ，。！'), []);
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

test('garbage in the knowledge base and canned files is reported with its place', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kb-test-'));
  try {
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
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
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
