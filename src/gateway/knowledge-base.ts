/**
 * The fallback's answers: a full-text index over the legal Q&A knowledge base, and canned texts.
 *
 * Search: MiniSearch (BM25) over each entry's title and question, with Chinese word
 * segmentation from `Intl.Segmenter('zh', {granularity: 'word'})` for both the index and the
 * query. The best match answers when its score reaches `minScore`; below it, or when the source
 * is `canned`, the canned text for the situation answers.
 */
import { existsSync, readFileSync } from 'node:fs';
import MiniSearch from 'minisearch';
import { z } from 'zod';
import { KnowledgeEntrySchema, type KnowledgeEntry } from '../shared/knowledge-entry.js';
import type { DegradeSource } from './config.js';

/** Why the fallback answered instead of a worker. */
export const FALLBACK_REASONS = ['forced', 'breaker_open', 'no_healthy_worker', 'worker_failed', 'timeout', 'overloaded'] as const;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];

export type Degraded =
  | { source: 'kb'; reason: FallbackReason; entry_id: string; question: string; score: number }
  | { source: 'canned'; reason: FallbackReason; best_score?: number };

export interface FallbackAnswer {
  text: string;
  degraded: Degraded;
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

/** Reads the canned answers file; an empty path gives the built-in texts. Throws with the path and the field at fault. */
export function loadCannedAnswers(path: string): CannedAnswers {
  if (!path) return CannedAnswersSchema.parse({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`canned answers ${path}: ${(err as Error).message}`);
  }
  const parsed = CannedAnswersSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`canned answers ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Reads a JSONL file of knowledge entries. A line that is not a valid entry is reported with its
 * line number and skipped, so one bad line does not take the whole fallback down.
 */
export function loadKnowledgeJsonl(path: string): { entries: KnowledgeEntry[]; problems: string[] } {
  const entries: KnowledgeEntry[] = [];
  const problems: string[] = [];
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      problems.push(`line ${i + 1}: not JSON`);
      continue;
    }
    const parsed = KnowledgeEntrySchema.safeParse(value);
    if (parsed.success) entries.push(parsed.data);
    else problems.push(`line ${i + 1}: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`);
  }
  return { entries, problems };
}

const segmenter = new Intl.Segmenter('zh', { granularity: 'word' });

/** Word tokens of a text: the segmenter's word-like segments (punctuation and spaces dropped). */
export function segmentWords(text: string): string[] {
  const out: string[] = [];
  for (const s of segmenter.segment(text)) if (s.isWordLike) out.push(s.segment);
  return out;
}

interface StoredEntry {
  id: string;
  title: string;
  question: string;
  reply: string;
}

export interface KnowledgeMatch {
  entry: KnowledgeEntry;
  score: number;
}

export class KnowledgeBase {
  private readonly index: MiniSearch<StoredEntry>;
  readonly size: number;

  constructor(entries: readonly KnowledgeEntry[]) {
    this.index = new MiniSearch<StoredEntry>({
      idField: 'id',
      fields: ['title', 'question'],
      storeFields: ['title', 'question', 'reply'],
      tokenize: segmentWords,
      processTerm: (term) => term.toLowerCase(),
      searchOptions: { boost: { title: 2 }, combineWith: 'OR' },
    });
    // Ids repeat when a corpus lists several replies to one question; the first one wins.
    const seen = new Set<string>();
    const unique = entries.filter((e) => (seen.has(e.id) ? false : (seen.add(e.id), true)));
    this.index.addAll(unique);
    this.size = unique.length;
  }

  /** The best match for a question, or null when nothing shares a word with it. */
  best(question: string): KnowledgeMatch | null {
    const hit = this.index.search(question)[0];
    if (!hit) return null;
    const entry = { id: String(hit.id), title: hit.title as string, question: hit.question as string, reply: hit.reply as string };
    return { entry, score: hit.score };
  }
}

export class FallbackAnswerer {
  constructor(
    private readonly kb: KnowledgeBase,
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

/** Builds the fallback from config: the knowledge base (missing file → canned answers only) and canned texts. */
export function loadFallback(options: { path: string; cannedPath: string; minScore: number }): LoadedFallback {
  const warnings: string[] = [];
  let entries: KnowledgeEntry[] = [];
  if (!options.path) {
    warnings.push('no knowledge base configured: the fallback gives canned answers only');
  } else if (!existsSync(options.path)) {
    warnings.push(`knowledge base ${options.path} not found: the fallback gives canned answers only`);
  } else if (!options.path.endsWith('.jsonl')) {
    warnings.push(`knowledge base ${options.path}: only .jsonl is read; the fallback gives canned answers only`);
  } else {
    const loaded = loadKnowledgeJsonl(options.path);
    entries = loaded.entries;
    if (loaded.problems.length > 0) {
      warnings.push(`knowledge base ${options.path}: ${loaded.problems.length} bad lines skipped (first: ${loaded.problems[0]})`);
    }
  }
  const answerer = new FallbackAnswerer(new KnowledgeBase(entries), loadCannedAnswers(options.cannedPath), options.minScore);
  return { answerer, warnings };
}
