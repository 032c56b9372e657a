/**
 * A deterministic stand-in for the model, for scheduler unit tests only: a sequence's next-token
 * logits are a hash of every token it holds (and of its adapter), so rows mixed up between
 * sequences, a token fed twice or a cache not freed all show in the outputs. It records every
 * call so that tests can see batch sizes and which sequences each step ran.
 */
import type { EngineAdapter, EngineInfo, EngineSequence, InferenceEngine, PrefixCacheStats } from '../../src/worker/engine/engine.js';
import { sleep } from '../../src/shared/net.js';

class ToySequence implements EngineSequence {
  tokens: number[] = [];
  constructor(
    readonly tag: number,
    readonly adapter: EngineAdapter | null,
    readonly readyAt: number,
  ) {}
  get length(): number {
    return this.tokens.length;
  }
}

export interface ToyEngineOptions {
  vocabSize?: number;
  contextLength?: number;
  maxSequences?: number;
  /** Ids that never win (the tokenizer's stop ids, unless a test wants them). */
  banned?: number[];
  /** Milliseconds each engine call takes (lets tests act between steps). */
  stepMs?: number;
  /** A sequence can be prefilled this long after it opens (`readyAt`, as the simulated engine's time to first token). */
  readyAfterMs?: number;
  /** Block size of a prefix cache over every prompt prefilled so far; absent: no prefix cache. */
  prefixBlock?: number;
}

export class ToyEngine implements InferenceEngine {
  readonly info: EngineInfo;
  readonly calls: Array<{ kind: 'prefill' | 'decode'; tags: number[]; tokens: number }> = [];
  private readonly open_ = new Set<ToySequence>();
  private nextTag = 0;
  private readonly banned: Set<number>;
  private readonly stepMs: number;
  private readonly readyAfterMs: number;
  /** Prefill calls made before the sequence was ready (the scheduler should make none). */
  earlyPrefills = 0;
  private readonly prefixBlock: number;
  /** Prompts prefilled so far, by adapter name, for the prefix cache. */
  private readonly prompts: Array<{ adapter: string; tokens: number[] }> = [];
  /** When set, the next decode call throws this. */
  failNextDecode: Error | null = null;

  constructor(options: ToyEngineOptions = {}) {
    this.info = {
      model: 'toy',
      vocabSize: options.vocabSize ?? 768,
      contextLength: options.contextLength ?? 256,
      maxSequences: options.maxSequences ?? 16,
      executionProvider: 'cpu',
    };
    this.banned = new Set(options.banned ?? []);
    this.stepMs = options.stepMs ?? 0;
    this.readyAfterMs = options.readyAfterMs ?? 0;
    this.prefixBlock = options.prefixBlock ?? 0;
  }

  async reusePrefix(seq: EngineSequence, promptIds: readonly number[]): Promise<number> {
    const s = this.check(seq);
    if (!this.prefixBlock || s.length > 0) return 0;
    const adapter = s.adapter?.name ?? '';
    let best = 0;
    for (const p of this.prompts) {
      if (p.adapter !== adapter) continue;
      let n = 0;
      while (n < p.tokens.length && n < promptIds.length - 1 && p.tokens[n] === promptIds[n]) n++;
      best = Math.max(best, n - (n % this.prefixBlock));
    }
    s.tokens.push(...promptIds.slice(0, best));
    return best;
  }

  prefixCacheStats(): PrefixCacheStats {
    const bytes = this.prompts.reduce((n, p) => n + p.tokens.length, 0);
    return { blocks: this.prefixBlock ? Math.floor(bytes / this.prefixBlock) : 0, bytes, capacityBytes: 0, evictions: 0 };
  }

  open(adapter: EngineAdapter | null): EngineSequence {
    if (this.open_.size >= this.info.maxSequences) throw new Error('no free row');
    const seq = new ToySequence(this.nextTag++, adapter, performance.now() + this.readyAfterMs);
    this.open_.add(seq);
    return seq;
  }

  close(seq: EngineSequence): void {
    this.open_.delete(seq as ToySequence);
  }

  kvTokensInUse(): number {
    let n = 0;
    for (const s of this.open_) n += s.length;
    return n;
  }

  get openSequences(): number {
    return this.open_.size;
  }

  readyAt(seq: EngineSequence): number {
    return (seq as ToySequence).readyAt;
  }

  async prefill(seq: EngineSequence, ids: readonly number[]): Promise<Float32Array> {
    const s = this.check(seq);
    if (performance.now() < s.readyAt) this.earlyPrefills++;
    if (this.stepMs) await sleep(this.stepMs);
    s.tokens.push(...ids);
    if (this.prefixBlock) this.prompts.push({ adapter: s.adapter?.name ?? '', tokens: [...s.tokens] });
    this.calls.push({ kind: 'prefill', tags: [s.tag], tokens: ids.length });
    const out = new Float32Array(this.info.vocabSize);
    this.fillRow(s, out);
    return out;
  }

  async decode(seqs: readonly EngineSequence[], ids: readonly number[]): Promise<Float32Array> {
    const list = seqs.map((q) => this.check(q));
    if (this.stepMs) await sleep(this.stepMs);
    if (this.failNextDecode) {
      const err = this.failNextDecode;
      this.failNextDecode = null;
      throw err;
    }
    const v = this.info.vocabSize;
    const out = new Float32Array(v * list.length);
    list.forEach((s, i) => {
      s.tokens.push(ids[i]!);
      this.fillRow(s, out.subarray(i * v, (i + 1) * v));
    });
    this.calls.push({ kind: 'decode', tags: list.map((s) => s.tag), tokens: list.length });
    return out;
  }

  async dispose(): Promise<void> {
    this.open_.clear();
  }

  private check(seq: EngineSequence): ToySequence {
    const s = seq as ToySequence;
    if (!this.open_.has(s)) throw new Error('sequence is not open');
    if (s.length >= this.info.contextLength) throw new Error('context overflow');
    return s;
  }

  private fillRow(s: ToySequence, out: Float32Array): void {
    let h = s.adapter ? 0x9e3779b9 ^ s.adapter.name.length : 17;
    for (const t of s.tokens) h = Math.imul(h ^ t, 0x01000193) >>> 0;
    for (let j = 0; j < out.length; j++) {
      const x = Math.imul(h ^ Math.imul(j + 1, 0x27d4eb2d), 0x165667b1) >>> 0;
      out[j] = this.banned.has(j) ? -Infinity : (x % 10007) / 1000;
    }
  }
}
