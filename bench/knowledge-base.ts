/**
 * `npm run bench:kb [-- --entries N --questions Q --rounds R]`: what a degraded answer's knowledge
 * base search costs, side by side in one run, uncached, on `generateKnowledgeBase(N)` and
 * `generateQuestions(…, Q)`:
 *   - the typed-array index (src/gateway/fallback/kb-index.ts) with ICU's words (bench/icu-words.ts, the
 *     segmentation before jieba) and with jieba's (the gateway's);
 *   - MiniSearch with jieba's words and the same query shaping (test/helpers/minisearch-kb.ts, the
 *     search before the typed-array index), which the index must score equally to.
 * For each: build time (median of three builds) and the index's memory (heap and array buffers
 * after a full GC, with --expose-gc; jieba's dictionary lives outside, loaded once per process,
 * and is measured on its own); µs per query at p50 and p99 and queries/s over R rounds in
 * rotating order after a warm-up; segmenting the question alone; how many questions reach the
 * gateway's default `minScore` (20), the related ones and the unrelated ones apart. Also checks
 * that the index and MiniSearch find the same best entry (or one MiniSearch scores exactly as
 * well) with the same score. Then live changes on an index of L entries (`--live-entries`,
 * 100,000): the latency of adding one entry (segmenting it included), of replacing one and of
 * deleting one, and what a search costs on the unchanged index next to the first search after an
 * addition (which recomputes the weights of the terms it uses). Prints a table, then one JSON line.
 */
import { parseArgs } from 'node:util';
import { KnowledgeBase, segmentWords } from '../src/gateway/fallback/knowledge-base.js';
import type { KnowledgeEntry } from '../src/shared/knowledge-entry.js';
import { loadWordSegmenter } from '../src/shared/word-segmenter.js';
import { MiniSearchKnowledgeBase } from '../test/helpers/minisearch-kb.js';
import { icuWords } from './icu-words.js';
import { generateKnowledgeBase, generateQuestions, UNRELATED } from './kb-corpus.js';
import { percentile } from './measure.js';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '10000' },
    questions: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '3' },
    'live-entries': { type: 'string', default: '100000' },
    changes: { type: 'string', default: '500' },
  },
});
const ENTRIES = Number(args.entries);
const QUESTIONS = Number(args.questions);
const ROUNDS = Number(args.rounds);
/** The gateway's default `knowledgeBase.minScore`. */
const MIN_SCORE = 20;

type Match = { id: string; score: number } | null;
const LIVE_ENTRIES = Number(args['live-entries']);
const CHANGES = Number(args.changes);

interface Searcher {
  name: string;
  segment: (text: string) => string[];
  build(entries: readonly KnowledgeEntry[]): unknown;
  search(index: unknown, question: string): Match;
}

const typedArrayIndex = (name: string, segment: (text: string) => string[]): Searcher => ({
  name,
  segment,
  build: (entries) => new KnowledgeBase(entries, { cacheLimit: 0, segment }),
  search: (index, q) => {
    const m = (index as KnowledgeBase).best(q);
    return m && { id: m.entry.id, score: m.score };
  },
});

const SEARCHERS: Searcher[] = [
  typedArrayIndex('index, ICU words (before)', icuWords),
  typedArrayIndex('index, jieba words (after)', segmentWords),
  {
    name: 'MiniSearch, jieba words',
    segment: segmentWords,
    build: (entries) => new MiniSearchKnowledgeBase(entries),
    search: (index, q) => (index as MiniSearchKnowledgeBase).best(q),
  },
];
const ICU = 0;
const JIEBA = 1;
const MINI = 2;

const gc = (globalThis as { gc?: () => void }).gc;
/** Heap plus array buffers (typed arrays live outside the JS heap), bytes. */
function memory(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

// jieba's dictionary first, alone: it is loaded once per process, whatever the corpus.
gc?.();
const rssBefore = process.memoryUsage().rss;
const dictStarted = performance.now();
loadWordSegmenter();
const dictionary = { loadMs: performance.now() - dictStarted, rssMB: (process.memoryUsage().rss - rssBefore) / 2 ** 20 };

const entries = generateKnowledgeBase(ENTRIES);
const questions = generateQuestions(entries, QUESTIONS);
const unrelated = new Set(UNRELATED);

interface Measured {
  name: string;
  buildMs: number;
  memoryMB: number;
  queries: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
  qps: number;
  segmentP50Us: number;
  segmentP99Us: number;
  /** Shares of the related and of the unrelated questions whose best match reaches MIN_SCORE. */
  answeredRelated: number;
  answeredUnrelated: number;
}

const indexes: unknown[] = [];
const builds: { buildMs: number; memoryMB: number }[] = [];
for (const s of SEARCHERS) {
  const times: number[] = [];
  let index: unknown;
  let bytes = 0;
  for (let i = 0; i < 3; i++) {
    index = undefined;
    const before = memory();
    const t0 = performance.now();
    index = s.build(entries);
    times.push(performance.now() - t0);
    bytes = memory() - before;
  }
  indexes.push(index);
  builds.push({ buildMs: times.sort((a, b) => a - b)[1]!, memoryMB: bytes / 2 ** 20 });
}

// Warm-up (JIT), the agreement check (the same best entry, or one MiniSearch scores exactly as
// well), and who reaches minScore.
const reference = indexes[MINI] as MiniSearchKnowledgeBase;
let agree = 0;
let maxRelDiff = 0;
let related = 0;
const answered = SEARCHERS.map(() => ({ related: 0, unrelated: 0 }));
for (const q of questions) {
  const want = reference.bestWithTies(q);
  const got = SEARCHERS[JIEBA]!.search(indexes[JIEBA], q);
  if (!unrelated.has(q)) related++;
  SEARCHERS.forEach((s, i) => {
    const m = s.search(indexes[i], q);
    if (m && m.score >= MIN_SCORE) answered[i]![unrelated.has(q) ? 'unrelated' : 'related']++;
  });
  if (!want || !got) {
    if (!want && !got) agree++;
    continue;
  }
  maxRelDiff = Math.max(maxRelDiff, Math.abs(got.score - want.score) / Math.abs(want.score));
  if (want.tiedIds.includes(got.id)) agree++;
}

const latencies = SEARCHERS.map(() => new Float64Array(QUESTIONS * ROUNDS));
const seconds = SEARCHERS.map(() => 0);
for (let round = 0; round < ROUNDS; round++) {
  // Each searcher goes first once in a while, so that machine noise falls on all of them.
  const order = SEARCHERS.map((_, i) => (i + round) % SEARCHERS.length);
  for (const i of order) {
    const s = SEARCHERS[i]!;
    const index = indexes[i];
    const out = latencies[i]!;
    const started = performance.now();
    for (let j = 0; j < QUESTIONS; j++) {
      const t0 = performance.now();
      s.search(index, questions[j]!);
      out[round * QUESTIONS + j] = (performance.now() - t0) * 1000;
    }
    seconds[i]! += (performance.now() - started) / 1000;
  }
}

// Segmentation alone, which every search pays per question.
const segmentTimes = SEARCHERS.map((s) => {
  const times = new Float64Array(QUESTIONS * ROUNDS);
  for (let round = 0; round < ROUNDS; round++) {
    for (let j = 0; j < QUESTIONS; j++) {
      const t0 = performance.now();
      s.segment(questions[j]!);
      times[round * QUESTIONS + j] = (performance.now() - t0) * 1000;
    }
  }
  return times.sort();
});

const measured: Measured[] = SEARCHERS.map((s, i) => {
  const sorted = latencies[i]!.slice().sort();
  return {
    name: s.name,
    buildMs: builds[i]!.buildMs,
    memoryMB: builds[i]!.memoryMB,
    queries: sorted.length,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    meanUs: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    qps: sorted.length / seconds[i]!,
    segmentP50Us: percentile(segmentTimes[i]!, 50),
    segmentP99Us: percentile(segmentTimes[i]!, 99),
    answeredRelated: answered[i]!.related / Math.max(1, related),
    answeredUnrelated: answered[i]!.unrelated / Math.max(1, QUESTIONS - related),
  };
});

/** a ÷ b per measure (queries/s as b ÷ a, so that above 1 always means b is better). */
function ratio(a: Measured, b: Measured) {
  return {
    buildMs: a.buildMs / b.buildMs,
    memoryMB: a.memoryMB / b.memoryMB,
    p50Us: a.p50Us / b.p50Us,
    p99Us: a.p99Us / b.p99Us,
    meanUs: a.meanUs / b.meanUs,
    qps: b.qps / a.qps,
  };
}
const icuOverJieba = ratio(measured[ICU]!, measured[JIEBA]!);
const miniOverIndex = ratio(measured[MINI]!, measured[JIEBA]!);

const f = (x: number, digits = 1) => x.toFixed(digits);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const rows: string[][] = [['search', 'build ms', 'memory MB', 'p50 µs', 'p99 µs', 'mean µs', 'queries/s', 'segment p50 µs', `≥ ${MIN_SCORE}: related`, 'unrelated']];
for (const m of measured) {
  rows.push([m.name, f(m.buildMs), f(m.memoryMB), f(m.p50Us), f(m.p99Us), f(m.meanUs), f(m.qps, 0), f(m.segmentP50Us), pct(m.answeredRelated), pct(m.answeredUnrelated)]);
}
const ratioRow = (name: string, r: ReturnType<typeof ratio>) => [name, f(r.buildMs, 2), f(r.memoryMB, 2), f(r.p50Us, 2), f(r.p99Us, 2), f(r.meanUs, 2), `×${f(r.qps, 2)}`, '', '', ''];
rows.push(ratioRow('ICU ÷ jieba (index)', icuOverJieba), ratioRow('MiniSearch ÷ index (jieba)', miniOverIndex));
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
console.log(`knowledge base search: ${ENTRIES} generated entries, ${QUESTIONS} questions (${QUESTIONS - related} unrelated) × ${ROUNDS} rounds per search, uncached${gc ? '' : ' (no --expose-gc: memory is rough)'}`);
for (const row of rows) console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
console.log('');
console.log(`jieba's dictionary (once per process, not in the memory column): loaded in ${f(dictionary.loadMs, 0)} ms, +${f(dictionary.rssMB, 0)} MB resident`);
console.log(`same best entry (or an exact tie) and score as MiniSearch: ${agree}/${QUESTIONS}; largest relative score difference ${maxRelDiff.toExponential(1)}`);

// Live changes on a large index: what one change costs, and what it costs the next search.
indexes.length = 0;
const liveEntries = generateKnowledgeBase(LIVE_ENTRIES, 42);
const fresh = generateKnowledgeBase(CHANGES * 2, 43);
const liveQuestions = generateQuestions(liveEntries, CHANGES, 8);
const beforeLive = memory();
const liveStart = performance.now();
const live = new KnowledgeBase(liveEntries, { cacheLimit: 0 });
const liveBuildMs = performance.now() - liveStart;
const liveMemoryMB = (memory() - beforeLive) / 2 ** 20;
const timed = (fn: () => void): number => {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) * 1000;
};
const summary = (us: number[]) => {
  const sorted = Float64Array.from(us).sort();
  return { p50Us: percentile(sorted, 50), p99Us: percentile(sorted, 99), maxUs: sorted[sorted.length - 1]! };
};
// Warm-up: the first changes and searches compile the paths (and the build's garbage is collected).
for (const q of liveQuestions.slice(0, 200)) live.search(q, 3);
const warm = generateKnowledgeBase(100, 44);
live.upsert(warm);
live.remove(warm.map((e) => e.id));
gc?.();
const searchUnchanged: number[] = [];
const adds: number[] = [];
const searchAfterAdd: number[] = [];
const replaces: number[] = [];
const deletes: number[] = [];
for (let i = 0; i < CHANGES; i++) {
  const q = liveQuestions[i]!;
  // The same question before and after an addition: the second search recomputes its terms.
  live.search(q, 3);
  searchUnchanged.push(timed(() => live.search(q, 3)));
  const entry = fresh[i]!;
  adds.push(timed(() => live.upsert([entry])));
  searchAfterAdd.push(timed(() => live.search(q, 3)));
  const replacement = { ...fresh[CHANGES + i]!, id: liveEntries[i]!.id };
  replaces.push(timed(() => live.upsert([replacement])));
  const gone = liveEntries[LIVE_ENTRIES - 1 - i]!.id;
  deletes.push(timed(() => live.remove([gone])));
}
const changes = {
  entries: LIVE_ENTRIES,
  changes: CHANGES,
  buildMs: liveBuildMs,
  memoryMB: liveMemoryMB,
  add: summary(adds),
  replace: summary(replaces),
  delete: summary(deletes),
  searchUnchanged: summary(searchUnchanged),
  searchAfterAdd: summary(searchAfterAdd),
  finalSize: live.size,
};
console.log('');
console.log(`live changes on ${LIVE_ENTRIES} generated entries (built in ${f(liveBuildMs / 1000, 2)} s, ${f(liveMemoryMB)} MB), ${CHANGES} of each, top 3:`);
const liveRows: string[][] = [['operation', 'p50 µs', 'p99 µs', 'max µs']];
for (const [name, m] of [
  ['add one entry', changes.add],
  ['replace one entry', changes.replace],
  ['delete one entry', changes.delete],
  ['search, unchanged index', changes.searchUnchanged],
  ['first search after an addition', changes.searchAfterAdd],
] as const) {
  liveRows.push([name, f(m.p50Us), f(m.p99Us), f(m.maxUs)]);
}
const liveWidths = liveRows[0]!.map((_, c) => Math.max(...liveRows.map((row) => row[c]!.length)));
for (const row of liveRows) console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(liveWidths[c]!) : cell.padStart(liveWidths[c]!))).join('  '));
console.log(JSON.stringify({ entries: ENTRIES, questions: QUESTIONS, rounds: ROUNDS, dictionary, measured, ratio: { icuOverJieba, miniOverIndex }, agree, maxRelDiff, changes }));
