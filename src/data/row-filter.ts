/**
 * Which lawzhidao rows become data, shared by prepare-data and the knowledge base: malformed rows
 * (reported by the reader), rows without a reply, rows with neither title nor question, answers
 * not marked best when only the best are wanted, and exact duplicates are dropped and counted by
 * reason. Duplicates are found by a 28-byte digest per kept row, so memory grows with the number
 * of rows kept, never with their text.
 */
import { createHash } from 'node:crypto';
import type { LawzhidaoRow, SkippedRow } from './lawzhidao-csv.js';

export type DropReason = 'empty_reply' | 'empty_prompt' | 'not_best' | 'duplicate' | `malformed_${Lowercase<SkippedRow['reason']>}`;

const MAX_EXAMPLES = 20;

/** A digest of text with whitespace runs folded, for spotting duplicates in bounded memory. */
export function duplicateKey(...parts: string[]): string {
  const h = createHash('sha1');
  for (const p of parts) h.update(p.replace(/\s+/g, ' ').trim()).update('\u0000');
  return h.digest('base64');
}

export class RowFilter {
  rowsRead = 0;
  readonly dropped: Partial<Record<DropReason, number>> = {};
  /** The first malformed rows, with their line numbers. */
  readonly malformedExamples: SkippedRow[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly bestOnly: boolean) {}

  /** Pass as the reader's onSkip. */
  readonly onSkip = (skip: SkippedRow): void => {
    this.rowsRead++;
    this.drop(`malformed_${skip.reason.toLowerCase() as Lowercase<SkippedRow['reason']>}`);
    if (this.malformedExamples.length < MAX_EXAMPLES) this.malformedExamples.push(skip);
  };

  /** Why a row is dropped (counted), or null when it is kept; `key` identifies its content. */
  check(row: LawzhidaoRow, key: string): DropReason | null {
    this.rowsRead++;
    if (!row.reply) return this.drop('empty_reply');
    if (!row.title && !row.question) return this.drop('empty_prompt');
    if (this.bestOnly && row.isBest !== true) return this.drop('not_best');
    if (this.seen.has(key)) return this.drop('duplicate');
    this.seen.add(key);
    return null;
  }

  /** Frees the duplicate set once the read is over. */
  done(): void {
    this.seen.clear();
  }

  private drop(reason: DropReason): DropReason {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    return reason;
  }
}

/** `dropped N reason` lines and the malformed examples, for the CLIs' summaries. */
export function formatDropped(dropped: Partial<Record<DropReason, number>>, examples: SkippedRow[]): string[] {
  const lines: string[] = [];
  const reasons = Object.entries(dropped).sort(([a], [b]) => a.localeCompare(b));
  if (reasons.length === 0) lines.push('dropped 0');
  for (const [reason, n] of reasons) lines.push(`dropped ${n} ${reason}`);
  for (const ex of examples) lines.push(`  line ${ex.line}: ${ex.reason} ${ex.message}`);
  return lines;
}
