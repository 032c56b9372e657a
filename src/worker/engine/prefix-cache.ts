/**
 * The prefix cache's index: blocks of `blockTokens` prompt tokens, each keyed by a hash of its
 * tokens, of every token before it and of the adapter (a chain, as vLLM's automatic prefix
 * caching keys its blocks), so a key names one exact prefix. What a block holds (the KV of its
 * positions, for every layer) is up to the engine; this class only counts its bytes.
 *
 * Eviction is least recently used within `maxBytes`. A lookup or an insert touches the chain from
 * its last block back to its first, so a prefix's first blocks are always more recent than its
 * later ones and eviction takes the ends of chains first: a block whose parent is gone could
 * never be found again.
 */
import { createHash } from 'node:crypto';

export interface CachedBlock<T> {
  readonly key: string;
  readonly tokens: readonly number[];
  readonly data: T;
  readonly bytes: number;
}

export class PrefixCache<T> {
  /** Map order is the LRU order: first = least recently used. */
  private readonly blocks = new Map<string, CachedBlock<T>>();
  private bytes_ = 0;
  evictions = 0;

  constructor(
    readonly maxBytes: number,
    readonly blockTokens: number,
  ) {
    if (!Number.isSafeInteger(blockTokens) || blockTokens < 1) throw new Error(`blockTokens must be a positive integer, got ${blockTokens}`);
  }

  get bytes(): number {
    return this.bytes_;
  }

  get size(): number {
    return this.blocks.size;
  }

  /** The chain keys of the first `blocks` full blocks of `tokens` (fewer if `tokens` is shorter). */
  keys(adapter: string | null, tokens: readonly number[], blocks = Math.floor(tokens.length / this.blockTokens)): string[] {
    const out: string[] = [];
    let parent = `adapter:${adapter ?? ''}`;
    const n = Math.min(blocks, Math.floor(tokens.length / this.blockTokens));
    for (let b = 0; b < n; b++) {
      const block = tokens.slice(b * this.blockTokens, (b + 1) * this.blockTokens);
      parent = createHash('sha256').update(parent).update(Int32Array.from(block)).digest('base64');
      out.push(parent);
    }
    return out;
  }

  /** The cached blocks of the longest prefix of `keys` present (token ids checked), touched. */
  lookup(keys: readonly string[], tokens: readonly number[]): Array<CachedBlock<T>> {
    const found: Array<CachedBlock<T>> = [];
    for (const [b, key] of keys.entries()) {
      const block = this.blocks.get(key);
      if (!block || !sameTokens(block.tokens, tokens, b * this.blockTokens)) break;
      found.push(block);
    }
    this.touch(found);
    return found;
  }

  has(key: string): boolean {
    return this.blocks.has(key);
  }

  /**
   * Adds the blocks of one prefix (`chain[i]` being block i's key, already cached or not; `make`
   * builds what a missing block holds) and evicts least recently used blocks beyond the budget.
   * A block larger than the whole budget is not kept.
   */
  insert(chain: readonly string[], tokens: readonly number[], make: (block: number) => { data: T; bytes: number }): void {
    const touched: Array<CachedBlock<T>> = [];
    for (const [b, key] of chain.entries()) {
      let block = this.blocks.get(key);
      if (!block) {
        const { data, bytes } = make(b);
        if (bytes > this.maxBytes) break;
        block = { key, tokens: tokens.slice(b * this.blockTokens, (b + 1) * this.blockTokens), data, bytes };
        this.blocks.set(key, block);
        this.bytes_ += bytes;
      }
      touched.push(block);
    }
    this.touch(touched);
    for (const [key, block] of this.blocks) {
      if (this.bytes_ <= this.maxBytes) break;
      this.blocks.delete(key);
      this.bytes_ -= block.bytes;
      this.evictions++;
    }
  }

  private touch(chain: Array<CachedBlock<T>>): void {
    for (let i = chain.length - 1; i >= 0; i--) {
      const block = chain[i]!;
      this.blocks.delete(block.key);
      this.blocks.set(block.key, block);
    }
  }
}

function sameTokens(block: readonly number[], tokens: readonly number[], from: number): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== tokens[from + i]) return false;
  return true;
}
