/**
 * The fallback's answers: a full-text index over the legal Q&A knowledge base, and canned texts.
 *
 * Search: a BM25+ index over each entry's title and question that scores as MiniSearch would
 * (`kb-index.ts`, hand-written for speed; the reasons and numbers are there), with jieba's words
 * (src/shared/word-segmenter.ts, the evaluation's segmenter) for both the index and the query,
 * common words left out of the query (see `best`), answers cached per question. The best
 * match answers when its score reaches `minScore`; below it, or when the source is `canned`,
 * the canned text for the situation answers. Entries are added, replaced and removed while the
 * gateway serves (`upsert`, `remove`: the live store in live-knowledge.ts calls them); the index
 * takes each change incrementally, and every change empties the cache.
 */
import { existsSync } from 'node:fs';
import { loadKnowledgeEntries, type KnowledgeSkip } from '../../data/knowledge-base.js';
import { z } from 'zod';
import { readJsonFile } from '../../shared/json-file.js';
import type { KnowledgeEntry } from '../../shared/knowledge-entry.js';
import { cutWords, loadWordSegmenter } from '../../shared/word-segmenter.js';
import type { DegradeSource } from '../config.js';
import { KbIndex } from './kb-index.js';

/** Why the fallback answered instead of a worker. */
export const FALLBACK_REASONS = ['forced', 'breaker_open', 'no_healthy_worker', 'worker_failed', 'timeout', 'overloaded'] as const;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];

export type Degraded =
  | { source: 'kb'; reason: FallbackReason; entry_id: string; question: string; score: number }
  | { source: 'canned'; reason: FallbackReason; best_score?: number };

export interface FallbackAnswer {
  text: string;
  degraded: Degraded;
  /** The entry that answered (source `kb`). */
  match?: KnowledgeMatch;
}

export const CannedAnswersSchema = z
  .object({
    unavailable: z
      .string()
      .min(1)
      .default('抱歉，法律咨询服务暂时繁忙，请稍后再试。如有紧急的法律问题，请直接咨询执业律师，或拨打 12348 公共法律服务热线。'),
    noMatch: z
      .string()
      .min(1)
      .default('抱歉，知识库中暂时没有与您的问题相近的解答。建议您补充案情细节后再次提问，或拨打 12348 公共法律服务热线咨询。'),
  })
  .strict();
export type CannedAnswers = z.infer<typeof CannedAnswersSchema>;

/** Reads the canned answers file; no path gives the built-in texts. Throws with the path and the field at fault. */
export function loadCannedAnswers(path: string | undefined): CannedAnswers {
  if (!path) return CannedAnswersSchema.parse({});
  return readJsonFile(path, CannedAnswersSchema, { fail: (file, detail) => new Error(`canned answers ${file}: ${detail}`) });
}

/** A token that is a word: it has a letter or a digit (jieba also gives punctuation and each space as tokens). */
const WORD_LIKE = /[\p{L}\p{N}]/u;

/**
 * Word tokens of a text: jieba's tokens (default mode, HMM on), punctuation and spaces dropped.
 * Long texts are cut whole: jieba's path through its dictionary and its HMM take time linear in
 * the text, where ICU's segmenter, used before, was quadratic and had to be given long texts in
 * 512-character pieces (100,000 characters of a novel, side by side: jieba 59 ms whole; ICU
 * 154 ms in pieces, 18.7 s whole).
 */
export function segmentWords(text: string): string[] {
  const out: string[] = [];
  for (const token of cutWords(text)) if (WORD_LIKE.test(token)) out.push(token);
  return out;
}

export interface KnowledgeMatch {
  entry: KnowledgeEntry;
  score: number;
}

/** Whether `best` answered from its cache or searched the index. */
export type KnowledgeSearch = 'hit' | 'miss';

export interface KnowledgeBaseOptions {
  /** Called once per `best`, e.g. to count cache hits. */
  onSearch?: (cache: KnowledgeSearch) => void;
  /** Questions remembered with their best match (the cache starts over when full); 0: none. Default 10,000. */
  cacheLimit?: number;
  /** How texts become words, for the index and the questions. Default `segmentWords` (jieba); `bench:kb` compares others. */
  segment?: (text: string) => string[];
}

/** A term in more than this share of the entries says little about a question (怎么, 办, 的) and costs the most to score. */
const COMMON_TERM_SHARE = 0.2;
/** Longer questions are not cached (they are rarely asked twice). */
const CACHE_MAX_QUESTION = 512;
/** The indexed fields: a title match counts twice. */
const FIELDS = [
  { name: 'title', boost: 2 },
  { name: 'question', boost: 1 },
] as const;

export class KnowledgeBase {
  /** Entries by entry number; a removed one leaves a hole (entry numbers are never reused). */
  private readonly entries: (KnowledgeEntry | undefined)[];
  private readonly byId = new Map<string, number>();
  private readonly index: KbIndex;
  private readonly cache = new Map<string, KnowledgeMatch | null>();
  private readonly onSearch: ((cache: KnowledgeSearch) => void) | undefined;
  private readonly cacheLimit: number;
  private readonly segment: (text: string) => string[];

  constructor(entries: readonly KnowledgeEntry[], options: KnowledgeBaseOptions = {}) {
    // Ids repeat when a corpus lists several replies to one question; the first one wins.
    const seen = new Set<string>();
    this.entries = entries.filter((e) => (seen.has(e.id) ? false : (seen.add(e.id), true)));
    this.segment = options.segment ?? segmentWords;
    // The dictionary loads here even for an empty knowledge base, so no question waits for it.
    if (!options.segment) loadWordSegmenter();
    this.entries.forEach((e, doc) => this.byId.set(e!.id, doc));
    this.index = new KbIndex(FIELDS, this.entries.map((e) => this.documentOf(e!)), { commonTermShare: COMMON_TERM_SHARE });
    this.onSearch = options.onSearch;
    this.cacheLimit = options.cacheLimit ?? 10_000;
  }

  get size(): number {
    return this.index.size;
  }

  get(id: string): KnowledgeEntry | undefined {
    const doc = this.byId.get(id);
    return doc === undefined ? undefined : this.entries[doc];
  }

  /** The live entries, oldest first. */
  *all(): IterableIterator<KnowledgeEntry> {
    for (const e of this.entries) if (e) yield e;
  }

  /** The `limit` entries added last, newest first. */
  latest(limit: number): KnowledgeEntry[] {
    const out: KnowledgeEntry[] = [];
    for (let doc = this.entries.length - 1; doc >= 0 && out.length < limit; doc--) {
      const e = this.entries[doc];
      if (e) out.push(e);
    }
    return out;
  }

  /**
   * Adds entries, or replaces those whose id is known (removed, then added as new: the index
   * scores as MiniSearch would after `remove` and `add`). An entry equal to the one it would
   * replace changes nothing. Returns how many entries changed.
   */
  upsert(entries: readonly KnowledgeEntry[]): number {
    let changed = 0;
    for (const entry of entries) {
      const old = this.get(entry.id);
      if (old && sameEntry(old, entry)) continue;
      if (old) this.removeDoc(this.byId.get(entry.id)!);
      const doc = this.index.add(this.documentOf(entry));
      this.entries[doc] = entry;
      this.byId.set(entry.id, doc);
      changed++;
    }
    if (changed > 0) this.cache.clear();
    return changed;
  }

  /** Removes entries by id; unknown ids are skipped. Returns how many were removed. */
  remove(ids: Iterable<string>): number {
    let removed = 0;
    for (const id of ids) {
      const doc = this.byId.get(id);
      if (doc === undefined) continue;
      this.removeDoc(doc);
      removed++;
    }
    if (removed > 0) this.cache.clear();
    return removed;
  }

  private removeDoc(doc: number): void {
    const entry = this.entries[doc]!;
    this.index.remove(doc, this.documentOf(entry));
    this.entries[doc] = undefined;
    this.byId.delete(entry.id);
  }

  /**
   * The best match for a question, or null when nothing shares a word with it. Words no entry has
   * are dropped, then common words (unless nothing else is left); entries with all the remaining
   * words are searched first, entries with any of them only when none has all (see `KbIndex.shape`).
   */
  best(question: string): KnowledgeMatch | null {
    const cacheable = this.cacheLimit > 0 && question.length <= CACHE_MAX_QUESTION;
    if (cacheable) {
      const hit = this.cache.get(question);
      if (hit !== undefined) {
        this.onSearch?.('hit');
        return hit;
      }
    }
    this.onSearch?.('miss');
    const found = this.index.best(this.segment(question));
    const match = found && { entry: this.entries[found.doc]!, score: found.score };
    if (cacheable) {
      if (this.cache.size >= this.cacheLimit) this.cache.clear();
      this.cache.set(question, match);
    }
    return match;
  }

  /** An entry's indexed fields, in words. */
  private documentOf(entry: KnowledgeEntry): string[][] {
    return [this.segment(entry.title), this.segment(entry.question)];
  }

  /** The `k` best matches (at most 100; none for k < 1), best first, by the same query shaping as `best`; not cached. */
  search(question: string, k: number): KnowledgeMatch[] {
    return this.index.search(this.segment(question), k).map((hit) => ({ entry: this.entries[hit.doc]!, score: hit.score }));
  }
}

function sameEntry(a: KnowledgeEntry, b: KnowledgeEntry): boolean {
  return a.title === b.title && a.question === b.question && a.reply === b.reply && a.source === b.source;
}

export class FallbackAnswerer {
  constructor(
    readonly kb: KnowledgeBase,
    private readonly canned: CannedAnswers,
    private readonly minScore: number,
  ) {}

  get knowledgeBaseSize(): number {
    return this.kb.size;
  }

  answer(question: string, source: DegradeSource, reason: FallbackReason): FallbackAnswer {
    if (source === 'canned') return { text: this.canned.unavailable, degraded: { source: 'canned', reason } };
    const match = this.kb.best(question);
    if (!match || match.score < this.minScore) {
      const degraded: Degraded = { source: 'canned', reason };
      if (match) degraded.best_score = round(match.score);
      return { text: this.kb.size === 0 ? this.canned.unavailable : this.canned.noMatch, degraded };
    }
    return {
      text: match.entry.reply,
      match,
      degraded: {
        source: 'kb',
        reason,
        entry_id: match.entry.id,
        question: match.entry.question || match.entry.title,
        score: round(match.score),
      },
    };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export interface LoadedFallback {
  answerer: FallbackAnswerer;
  /** Things worth a warning at start (missing file, skipped lines). */
  warnings: string[];
}

/**
 * Builds the fallback from config: the knowledge base (a build-kb `.jsonl` or a lawzhidao `.csv`,
 * read by the data tools' loader; a missing or unreadable file leaves canned answers only) and
 * the canned texts.
 */
export async function loadFallback(options: {
  path: string;
  cannedPath?: string | undefined;
  minScore: number;
  onSearch?: KnowledgeBaseOptions['onSearch'];
}): Promise<LoadedFallback> {
  const warnings: string[] = [];
  let entries: KnowledgeEntry[] = [];
  if (!options.path) {
    warnings.push('no knowledge base configured: the fallback gives canned answers only');
  } else if (!existsSync(options.path)) {
    warnings.push(`knowledge base ${options.path} not found: the fallback gives canned answers only`);
  } else {
    const skipped: KnowledgeSkip[] = [];
    try {
      entries = await loadKnowledgeEntries(options.path, { onSkip: (skip) => skipped.push(skip) });
    } catch (err) {
      warnings.push(`knowledge base ${options.path}: ${(err as Error).message}; the fallback gives canned answers only`);
    }
    // Rows the CSV filter drops on purpose (empty replies, repeats) are not problems of the file.
    const bad = skipped.filter((s) => s.reason !== 'DROPPED');
    if (bad.length > 0) {
      warnings.push(`knowledge base ${options.path}: ${bad.length} bad lines skipped (first: line ${bad[0]!.line}: ${bad[0]!.message})`);
    }
  }
  const answerer = new FallbackAnswerer(new KnowledgeBase(entries, { onSearch: options.onSearch }), loadCannedAnswers(options.cannedPath), options.minScore);
  return { answerer, warnings };
}
