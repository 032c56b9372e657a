/**
 * The knowledge base's own index against the MiniSearch search it replaced
 * (test/helpers/minisearch-kb.ts): for hundreds of questions on the sample CSV and on a generated
 * corpus, also after additions, replacements and removals, the same best entry and top k (any of
 * those MiniSearch scores exactly equal: ours takes the lowest entry number, MiniSearch its
 * insertion order) and the same scores, so `minScore` keeps its meaning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateKnowledgeBase, generateQuestions } from '../../../../bench/kb-corpus.js';
import { loadKnowledgeEntries } from '../../../../src/data/knowledge-base.js';
import { KnowledgeBase } from '../../../../src/gateway/fallback/knowledge-base.js';
import type { KnowledgeEntry } from '../../../../src/shared/knowledge-entry.js';
import { MiniSearchKnowledgeBase } from '../../../helpers/minisearch-kb.js';
import { PROJECT_ROOT } from '../../../helpers/paths.js';

interface Tally {
  and: number;
  or: number;
  none: number;
  ties: number;
}

function compare(entries: readonly KnowledgeEntry[], questions: readonly string[]): Tally {
  return compareWith(new KnowledgeBase(entries), new MiniSearchKnowledgeBase(entries), questions);
}

function compareWith(ours: KnowledgeBase, reference: MiniSearchKnowledgeBase, questions: readonly string[]): Tally {
  assert.equal(ours.size, reference.size);
  const tally: Tally = { and: 0, or: 0, none: 0, ties: 0 };
  for (const q of questions) {
    const want = reference.bestWithTies(q);
    const got = ours.best(q);
    if (!want) {
      assert.equal(got, null, `no match for ${JSON.stringify(q)}`);
      tally.none++;
      continue;
    }
    assert.ok(got, `a match for ${JSON.stringify(q)}`);
    assert.ok(Math.abs(got.score - want.score) <= 1e-9 * Math.abs(want.score), `score for ${JSON.stringify(q)}: ${got.score} vs MiniSearch ${want.score}`);
    assert.ok(want.tiedIds.includes(got.entry.id), `best for ${JSON.stringify(q)}: ${got.entry.id}, MiniSearch ${want.tiedIds.join(' or ')}`);
    tally[want.combined === 'AND' ? 'and' : 'or']++;
    if (want.tiedIds.length > 1) tally.ties++;
  }
  return tally;
}

/** Titles, questions, pieces of them, and words shared by many entries, to reach every branch of the query shaping. */
function questionsOf(entries: readonly KnowledgeEntry[], generated: number): string[] {
  const pieces = entries.flatMap((e) => [e.title, e.question, e.title.slice(0, 4), e.title.slice(2), `${e.title.slice(0, 3)}${e.question.slice(-6)}`]);
  return [...pieces.filter((p) => p.length > 0), ...generateQuestions(entries, generated, 11), '怎么办', '可以吗', '公司', '合同 押金 遗产 借条', '天气'];
}

test('on the sample CSV, the best entry and its score equal MiniSearch’s', async () => {
  const entries = await loadKnowledgeEntries(join(PROJECT_ROOT, 'data/sample/lawzhidao-sample.csv'), { onSkip: () => {} });
  assert.ok(entries.length >= 30);
  const questions = questionsOf(entries, 300);
  assert.ok(questions.length >= 400);
  const tally = compare(entries, questions);
  assert.ok(tally.and >= 100, `AND matches: ${JSON.stringify(tally)}`);
  assert.ok(tally.or >= 10, `OR matches: ${JSON.stringify(tally)}`);
  assert.ok(tally.none >= 5, `no matches: ${JSON.stringify(tally)}`);
});

test('on a generated 2,000-entry corpus, the best entry and its score equal MiniSearch’s', () => {
  const entries = generateKnowledgeBase(2000, 5);
  const questions = questionsOf(entries.slice(0, 100), 600);
  const tally = compare(entries, questions);
  assert.ok(tally.and >= 300, `AND matches: ${JSON.stringify(tally)}`);
  assert.ok(tally.or >= 10, `OR matches: ${JSON.stringify(tally)}`);
  assert.ok(tally.none >= 10, `no matches: ${JSON.stringify(tally)}`);
  assert.ok(tally.ties >= 1, `exact ties met: ${JSON.stringify(tally)}`);
});

test('repeated ids: the first entry is indexed, as with MiniSearch', () => {
  const entries: KnowledgeEntry[] = [
    { id: 'a', title: '房东不退押金怎么办', question: '', reply: '第一条' },
    { id: 'a', title: '公司拖欠工资怎么办', question: '', reply: '重复的 id' },
    { id: 'b', title: '朋友借钱不还怎么办', question: '有借条', reply: '起诉' },
  ];
  const ours = new KnowledgeBase(entries);
  assert.equal(ours.size, 2);
  assert.equal(ours.best('押金')!.entry.reply, '第一条');
  assert.equal(ours.best('拖欠工资'), null);
  assert.deepEqual(ours.best('借钱')!.score, new MiniSearchKnowledgeBase(entries).best('借钱')!.score);
});

test('equal scores go to the earlier entry', () => {
  const entries: KnowledgeEntry[] = [
    { id: 'x', title: '试用期被辞退有补偿吗', question: '', reply: '先' },
    { id: 'y', title: '试用期被辞退有补偿吗', question: '', reply: '后' },
    { id: 'z', title: '公司拖欠工资', question: '', reply: '无关' },
  ];
  const want = new MiniSearchKnowledgeBase(entries).bestWithTies('试用期辞退');
  assert.deepEqual(want?.tiedIds.sort(), ['x', 'y'], 'MiniSearch scores both the same');
  assert.equal(new KnowledgeBase(entries).best('试用期辞退')!.entry.id, 'x');
  assert.equal(new KnowledgeBase(entries.slice().reverse()).best('试用期辞退')!.entry.id, 'y');
});

/** Our top k against MiniSearch's results: the same scores, and at each place an entry MiniSearch scores exactly so. */
function compareTop(ours: KnowledgeBase, reference: MiniSearchKnowledgeBase, questions: readonly string[], k: number): number {
  let compared = 0;
  for (const q of questions) {
    const all = reference.all(q);
    const got = ours.search(q, k);
    assert.equal(got.length, Math.min(k, all.length), `results for ${JSON.stringify(q)}`);
    for (let i = 0; i < got.length; i++) {
      const want = all[i]!;
      assert.ok(Math.abs(got[i]!.score - want.score) <= 1e-9 * Math.abs(want.score), `score ${i} for ${JSON.stringify(q)}: ${got[i]!.score} vs MiniSearch ${want.score}`);
      const tied = all.filter((r) => r.score === want.score).map((r) => r.id);
      assert.ok(tied.includes(got[i]!.entry.id), `place ${i} for ${JSON.stringify(q)}: ${got[i]!.entry.id}, MiniSearch ${tied.join(' or ')}`);
    }
    if (got.length > 1) compared++;
  }
  return compared;
}

test('the top k results equal MiniSearch’s first k, place by place', () => {
  const entries = generateKnowledgeBase(1500, 9);
  const ours = new KnowledgeBase(entries);
  const reference = new MiniSearchKnowledgeBase(entries);
  const questions = questionsOf(entries.slice(0, 60), 300);
  for (const k of [1, 3, 8]) assert.ok(compareTop(ours, reference, questions, k) >= (k === 1 ? 0 : 200), `k = ${k}`);
});

test('after additions, replacements and removals, scores equal MiniSearch’s after the same add and remove calls', () => {
  const start = generateKnowledgeBase(800, 21);
  const ours = new KnowledgeBase(start);
  const reference = new MiniSearchKnowledgeBase(start);
  const fresh = generateKnowledgeBase(2400, 22);
  let next = 0;
  const live = new Set(start.map((e) => e.id));
  for (let round = 0; round < 6; round++) {
    // New entries (one at a time and in batches), replacements of existing ids, removals.
    const added = fresh.slice(next, next + 300);
    next += 300;
    for (const e of added.slice(0, 20)) {
      ours.upsert([e]);
      reference.upsert([e]);
    }
    ours.upsert(added.slice(20));
    reference.upsert(added.slice(20));
    for (const e of added) live.add(e.id);
    const ids = [...live];
    const replaced = ids.filter((_, i) => i % 17 === round).map((id, i) => ({ ...fresh[(next + i) % fresh.length]!, id }));
    ours.upsert(replaced);
    reference.upsert(replaced);
    const removed = ids.filter((_, i) => i % 5 === round % 5).slice(0, 200);
    assert.equal(ours.remove(removed), removed.length);
    reference.remove(removed);
    for (const id of removed) live.delete(id);
    assert.equal(ours.size, live.size);
    assert.equal(reference.size, live.size);
    const sample = [...live].slice(0, 40).map((id) => ours.get(id)!);
    const questions = [...questionsOf(sample, 150), ...removed.slice(0, 20).map((id) => start.find((e) => e.id === id)?.title ?? '借条')];
    const tally = compareWith(ours, reference, questions);
    assert.ok(tally.and >= 50, `round ${round}: ${JSON.stringify(tally)}`);
    compareTop(ours, reference, questions.slice(0, 100), 5);
  }
  for (const id of live) assert.ok(ours.get(id), id);
});

test('an index emptied and filled again scores as a fresh one; unknown and repeated removals change nothing', () => {
  const entries = generateKnowledgeBase(300, 31);
  const ours = new KnowledgeBase(entries);
  const reference = new MiniSearchKnowledgeBase(entries);
  assert.equal(ours.remove(['no-such-id']), 0);
  ours.remove(entries.map((e) => e.id));
  reference.remove(entries.map((e) => e.id));
  assert.equal(ours.remove([entries[0]!.id]), 0);
  assert.equal(ours.size, 0);
  assert.equal(ours.best(entries[0]!.title), null);
  assert.deepEqual(ours.search(entries[0]!.title, 5), []);
  const again = generateKnowledgeBase(300, 32);
  ours.upsert(again);
  reference.upsert(again);
  compareWith(ours, reference, questionsOf(again.slice(0, 50), 100));
  const fresh = new KnowledgeBase(again);
  for (const q of questionsOf(again.slice(0, 20), 50)) assert.deepEqual(ours.best(q)?.score, fresh.best(q)?.score, q);
  assert.equal(ours.upsert([again[0]!]), 0, 'an equal entry is not replaced');
});
