/**
 * `npm run bench:kb [-- --entries N --questions Q --rounds R]`: what a degraded answer's knowledge
 * base search costs, MiniSearch (the search the gateway used before, with the same query shaping:
 * test/helpers/minisearch-kb.ts) against the typed-array index (src/gateway/fallback/kb-index.ts), side by
 * side in one run, uncached, on `generateKnowledgeBase(N)` and `generateQuestions(…, Q)`:
 *   - build time (median of three builds) and the index's memory (heap and array buffers after a
 *     full GC, with --expose-gc);
 *   - µs per query at p50 and p99, and queries/s, over R rounds in alternating order after a warm-up;
 *   - what segmenting the question alone costs (both searches do it);
 *   - that both find the same best entry (or one MiniSearch scores exactly as well) and score;
 *   - live changes on an index of L entries (`--live-entries`, 100,000): the latency of adding
 *     one entry (segmenting it included), of replacing one and of deleting one, and what a search
 *     costs on the unchanged index next to the first search after an addition (which recomputes
 *     the weights of the terms it uses).
 * Prints a table, then one JSON line.
 */
import { parseArgs } from 'node:util';
import { KnowledgeBase, segmentWords } from '../src/gateway/fallback/knowledge-base.js';
import type { KnowledgeEntry } from '../src/shared/knowledge-entry.js';
import { MiniSearchKnowledgeBase } from '../test/helpers/minisearch-kb.js';
import { generateKnowledgeBase, generateQuestions } from './kb-corpus.js';

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
const LIVE_ENTRIES = Number(args['live-entries']);
const CHANGES = Number(args.changes);

interface Searcher {
  name: string;
  build(entries: readonly KnowledgeEntry[]): unknown;
  search(index: unknown, question: string): { id: string; score: number } | null;
}

const SEARCHERS: Searcher[] = [
  {
    name: 'MiniSearch',
    build: (entries) => new MiniSearchKnowledgeBase(entries),
    search: (index, q) => (index as MiniSearchKnowledgeBase).best(q),
  },
  {
    name: 'typed-array index',
    build: (entries) => new KnowledgeBase(entries, { cacheLimit: 0 }),
    search: (index, q) => {
      const m = (index as KnowledgeBase).best(q);
      return m && { id: m.entry.id, score: m.score };
    },
  },
];

const gc = (globalThis as { gc?: () => void }).gc;
/** Heap plus array buffers (typed arrays live outside the JS heap), bytes. */
function memory(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const entries = generateKnowledgeBase(ENTRIES);
const questions = generateQuestions(entries, QUESTIONS);

interface Measured {
  name: string;
  buildMs: number;
  memoryMB: number;
  queries: number;
  p50Us: number;
  p99Us: number;
  meanUs: number;
  qps: number;
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

// Warm-up (JIT), and the agreement check: the same best entry, or one MiniSearch scores exactly as well.
const reference = indexes[0] as MiniSearchKnowledgeBase;
let agree = 0;
let maxRelDiff = 0;
for (const q of questions) {
  const want = reference.bestWithTies(q);
  const got = SEARCHERS[1]!.search(indexes[1], q);
  SEARCHERS[0]!.search(indexes[0], q);
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
  const order = round % 2 === 0 ? [0, 1] : [1, 0];
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

// Segmentation alone, which both pay per question.
const segment = new Float64Array(QUESTIONS * ROUNDS);
for (let round = 0; round < ROUNDS; round++) {
  for (let j = 0; j < QUESTIONS; j++) {
    const t0 = performance.now();
    segmentWords(questions[j]!);
    segment[round * QUESTIONS + j] = (performance.now() - t0) * 1000;
  }
}
segment.sort();

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
  };
});
const [mini, ours] = measured as [Measured, Measured];
const ratio = {
  buildMs: mini.buildMs / ours.buildMs,
  memoryMB: mini.memoryMB / ours.memoryMB,
  p50Us: mini.p50Us / ours.p50Us,
  p99Us: mini.p99Us / ours.p99Us,
  meanUs: mini.meanUs / ours.meanUs,
  qps: ours.qps / mini.qps,
};
const segmentation = { p50Us: percentile(segment, 50), p99Us: percentile(segment, 99) };

const f = (x: number, digits = 1) => x.toFixed(digits);
const rows: string[][] = [['search', 'build ms', 'memory MB', 'p50 µs', 'p99 µs', 'mean µs', 'queries/s']];
for (const m of measured) rows.push([m.name, f(m.buildMs), f(m.memoryMB), f(m.p50Us), f(m.p99Us), f(m.meanUs), f(m.qps, 0)]);
rows.push(['MiniSearch ÷ ours', f(ratio.buildMs, 2), f(ratio.memoryMB, 2), f(ratio.p50Us, 1), f(ratio.p99Us, 1), f(ratio.meanUs, 1), `×${f(ratio.qps, 1)}`]);
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
console.log(`knowledge base search: ${ENTRIES} generated entries, ${QUESTIONS} questions × ${ROUNDS} rounds per search, uncached${gc ? '' : ' (no --expose-gc: memory is rough)'}`);
for (const row of rows) console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
console.log('');
console.log(`segmenting the question alone: p50 ${f(segmentation.p50Us)} µs, p99 ${f(segmentation.p99Us)} µs`);
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
console.log(JSON.stringify({ entries: ENTRIES, questions: QUESTIONS, rounds: ROUNDS, measured, ratio, segmentation, agree, maxRelDiff, changes }));
