/**
 * The knowledge base's own index against the MiniSearch search it replaced
 * (test/helpers/minisearch-kb.ts): for hundreds of questions on the sample CSV and on a generated
 * corpus, the same best entry (any of those MiniSearch scores exactly equal: ours takes the lowest
 * entry number, MiniSearch its insertion order) and the same score, so `minScore` keeps its meaning.
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
  const ours = new KnowledgeBase(entries);
  const reference = new MiniSearchKnowledgeBase(entries);
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
