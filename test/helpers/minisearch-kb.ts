/**
 * The knowledge-base search as it was built on MiniSearch, kept as the reference that the
 * typed-array index (src/gateway/fallback/kb-index.ts) must score equally to, and as the baseline of
 * `npm run bench:kb`: MiniSearch (BM25+) over title (boost 2) and question, the gateway's word
 * segmentation, and the same query shaping (unknown words dropped; words in more than a fifth of
 * the entries dropped unless nothing else is left, then the rarest; AND first, OR when no entry
 * has all the words). No cache: every call searches.
 */
import MiniSearch from 'minisearch';
import { segmentWords } from '../../src/gateway/fallback/knowledge-base.js';
import type { KnowledgeEntry } from '../../src/shared/knowledge-entry.js';

const COMMON_TERM_SHARE = 0.2;
const SEP = '\u0001';
const splitTerms = (s: string) => s.split(SEP);

export interface ReferenceMatch {
  id: string;
  score: number;
  /** Every entry with the best score (MiniSearch orders equal scores by its own insertion order). */
  tiedIds: string[];
  /** Whether entries with all the query words were found, or only entries with some. */
  combined: 'AND' | 'OR';
}

export class MiniSearchKnowledgeBase {
  private readonly index: MiniSearch<KnowledgeEntry>;
  private readonly df = new Map<string, number>();
  private readonly byId = new Map<string, KnowledgeEntry>();

  constructor(entries: readonly KnowledgeEntry[]) {
    this.index = new MiniSearch<KnowledgeEntry>({
      idField: 'id',
      fields: ['title', 'question'],
      storeFields: ['title', 'question', 'reply'],
      tokenize: segmentWords,
      processTerm: (term) => term.toLowerCase(),
      searchOptions: { boost: { title: 2 } },
    });
    const seen = new Set<string>();
    const unique = entries.filter((e) => (seen.has(e.id) ? false : (seen.add(e.id), true)));
    this.index.addAll(unique);
    for (const e of unique) this.count(e, 1);
  }

  get size(): number {
    return this.byId.size;
  }

  private get maxDf(): number {
    return Math.max(1, Math.floor(this.size * COMMON_TERM_SHARE));
  }

  private count(e: KnowledgeEntry, by: 1 | -1): void {
    if (by === 1) this.byId.set(e.id, e);
    else this.byId.delete(e.id);
    for (const term of new Set(segmentWords(`${e.title}\n${e.question}`).map((t) => t.toLowerCase()))) {
      const n = (this.df.get(term) ?? 0) + by;
      if (n === 0) this.df.delete(term);
      else this.df.set(term, n);
    }
  }

  /** Adds entries, replacing those whose id is known (MiniSearch's `remove`, then `add`). */
  upsert(entries: readonly KnowledgeEntry[]): void {
    for (const e of entries) {
      const old = this.byId.get(e.id);
      if (old) this.remove([e.id]);
      this.index.add(e);
      this.count(e, 1);
    }
  }

  /** Removes entries by id (MiniSearch's `remove`, which takes the document as it was added). */
  remove(ids: readonly string[]): void {
    for (const id of ids) {
      const old = this.byId.get(id);
      if (!old) continue;
      this.index.remove(old);
      this.count(old, -1);
    }
  }

  /** The first k results, as `{id, score}`. */
  top(question: string, k: number): { id: string; score: number }[] {
    return this.results(question).slice(0, k).map((r) => ({ id: String(r.id), score: r.score }));
  }

  /** Every result, as `{id, score}`, in MiniSearch's order. */
  all(question: string): { id: string; score: number }[] {
    return this.results(question).map((r) => ({ id: String(r.id), score: r.score }));
  }

  /** The best match, as the gateway's fallback used to take it (the first search result). */
  best(question: string): { id: string; score: number } | null {
    const top = this.results(question)[0];
    return top ? { id: String(top.id), score: top.score } : null;
  }

  /** The best match and every entry that scores exactly as well. */
  bestWithTies(question: string): ReferenceMatch | null {
    const { results, combined } = this.search(question);
    const top = results[0];
    if (!top) return null;
    const tiedIds = results.filter((r) => r.score === top.score).map((r) => String(r.id));
    return { id: String(top.id), score: top.score, tiedIds, combined };
  }

  private results(question: string): ReturnType<MiniSearch<KnowledgeEntry>['search']> {
    return this.search(question).results;
  }

  private search(question: string): { results: ReturnType<MiniSearch<KnowledgeEntry>['search']>; combined: 'AND' | 'OR' } {
    const known = [...new Set(segmentWords(question).map((t) => t.toLowerCase()))].filter((t) => this.df.has(t));
    if (known.length === 0) return { results: [], combined: 'AND' };
    let terms = known.filter((t) => this.df.get(t)! <= this.maxDf);
    if (terms.length === 0) terms = [known.reduce((a, b) => (this.df.get(a)! <= this.df.get(b)! ? a : b))];
    const query = terms.join(SEP);
    const all = this.index.search(query, { tokenize: splitTerms, combineWith: 'AND' });
    if (all.length > 0 || terms.length === 1) return { results: all, combined: 'AND' };
    return { results: this.index.search(query, { tokenize: splitTerms, combineWith: 'OR' }), combined: 'OR' };
  }
}
