/**
 * Which lawzhidao rows become data, shared by prepare-data and the knowledge base: malformed rows
 * (reported by the reader), rows without a reply, rows with neither title nor question, answers
 * not marked best when only the best are wanted, and exact duplicates are dropped and counted by
 * reason.
 *
 * Duplicates are found by a 64-bit fingerprint (the first 8 bytes of a SHA-1 of the text, with
 * whitespace runs folded) in an open-addressing table of two Uint32Arrays kept at most half
 * full: 16 bytes per kept row, against ~100 for a Set of digest strings, so a file of millions
 * of rows stays well under its own size in memory. Hand-written because no maintained package
 * offers a compact set of fixed-size keys. Two different texts share a fingerprint with
 * probability ~n²/2⁶⁵ (3·10⁻⁷ for 3 million rows); such a row would be counted a duplicate.
 */
import { createHash } from 'node:crypto';
import type { LawzhidaoRow, SkippedRow } from './lawzhidao-csv.js';

export type DropReason = 'empty_reply' | 'empty_prompt' | 'not_best' | 'duplicate' | `malformed_${Lowercase<SkippedRow['reason']>}`;

const MAX_EXAMPLES = 20;

/** SHA-1 of the parts with whitespace runs folded: what makes two rows duplicates. */
export function duplicateKey(...parts: string[]): Buffer {
  const h = createHash('sha1');
  for (const p of parts) h.update(p.replace(/\s+/g, ' ').trim()).update('\u0000');
  return h.digest();
}

/** A set of 64-bit fingerprints (the first 8 bytes of a key) with linear probing. */
export class FingerprintSet {
  private hi = new Uint32Array(1024);
  private lo = new Uint32Array(1024);
  size = 0;

  /** Adds the key's fingerprint; false when it was already there. */
  add(key: Buffer): boolean {
    const h = key.readUInt32BE(0);
    // 0/0 marks an empty slot, so a fingerprint of zero is stored as 0/1.
    const l = key.readUInt32BE(4) || (h === 0 ? 1 : 0);
    if ((this.size + 1) * 2 > this.hi.length) this.grow();
    const mask = this.hi.length - 1;
    for (let i = (h ^ l) & mask; ; i = (i + 1) & mask) {
      if (this.hi[i] === 0 && this.lo[i] === 0) {
        this.hi[i] = h;
        this.lo[i] = l;
        this.size++;
        return true;
      }
      if (this.hi[i] === h && this.lo[i] === l) return false;
    }
  }

  private grow(): void {
    const { hi, lo } = this;
    this.hi = new Uint32Array(hi.length * 2);
    this.lo = new Uint32Array(lo.length * 2);
    const mask = this.hi.length - 1;
    for (let j = 0; j < hi.length; j++) {
      if (hi[j] === 0 && lo[j] === 0) continue;
      let i = (hi[j]! ^ lo[j]!) & mask;
      while (this.hi[i] !== 0 || this.lo[i] !== 0) i = (i + 1) & mask;
      this.hi[i] = hi[j]!;
      this.lo[i] = lo[j]!;
    }
  }
}

export class RowFilter {
  rowsRead = 0;
  readonly dropped: Partial<Record<DropReason, number>> = {};
  /** The first malformed rows, with their line numbers. */
  readonly malformedExamples: SkippedRow[] = [];
  private seen = new FingerprintSet();

  constructor(private readonly bestOnly: boolean) {}

  /** Pass as the reader's onSkip. */
  readonly onSkip = (skip: SkippedRow): void => {
    this.rowsRead++;
    this.drop(`malformed_${skip.reason.toLowerCase() as Lowercase<SkippedRow['reason']>}`);
    if (this.malformedExamples.length < MAX_EXAMPLES) this.malformedExamples.push(skip);
  };

  /** Why a row is dropped (counted), or null when it is kept; `key` identifies its content. */
  check(row: LawzhidaoRow, key: Buffer): DropReason | null {
    this.rowsRead++;
    if (!row.reply) return this.drop('empty_reply');
    if (!row.title && !row.question) return this.drop('empty_prompt');
    if (this.bestOnly && row.isBest !== true) return this.drop('not_best');
    if (!this.seen.add(key)) return this.drop('duplicate');
    return null;
  }

  /** Frees the duplicate set once the read is over. */
  done(): void {
    this.seen = new FingerprintSet();
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
