/**
 * Next-token choice from one row of logits, the way Hugging Face's `generate` does it for ChatGLM3:
 * repetition penalty over every token the sequence holds (prompt included), then greedy argmax at
 * temperature 0, else temperature → top-k → top-p (nucleus) → a draw from the renormalised
 * distribution. Logprobs are the model's own log-softmax (before penalty and temperature), with
 * the top-N alternatives, as the OpenAI API returns them.
 *
 * Cost: this runs for every sequence after every decode step over a 65024-entry vocabulary, so it
 * never sorts the vocabulary. Top candidates come from a bounded min-heap (O(V log m)); for top-p
 * without top-k, m starts at 64 and grows ×4 only while the candidates hold less than top_p of the
 * mass (one O(V) pass gives the partition function first). Scratch arrays are reused across calls.
 * The heap and the draw are written here because they work in place on typed arrays; the random
 * numbers come from pure-rand, seeded per request so that `seed` makes a request reproducible.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { randomInt } from 'node:crypto';

export interface SamplingParams {
  temperature: number;
  top_p: number;
  /** 0 or absent: no top-k. */
  top_k?: number | undefined;
  /** 1 or absent: no penalty. */
  repetition_penalty?: number | undefined;
}

export interface Rng {
  next(): number;
}

/** A generator for one request: from `seed` when given (reproducible), else from the OS. */
export function createRng(seed?: number): Rng {
  const s = seed ?? randomInt(0, 2 ** 31);
  // Fold a seed beyond 32 bits into 32 so that every integer seed counts.
  const folded = (s % 2 ** 32 ^ Math.floor(s / 2 ** 32)) | 0;
  const gen = xoroshiro128plus(folded);
  return { next: () => uniformFloat64(gen) };
}

/** The distinct ids a sequence holds, for the repetition penalty (O(1) per added token). */
export class TokenSet {
  private readonly member: Uint8Array;
  readonly ids: number[] = [];

  constructor(vocabSize: number, initial: Iterable<number> = []) {
    this.member = new Uint8Array(vocabSize);
    for (const id of initial) this.add(id);
  }

  add(id: number): void {
    if (id < 0 || id >= this.member.length || this.member[id]) return;
    this.member[id] = 1;
    this.ids.push(id);
  }
}

export interface TopLogprob {
  id: number;
  logprob: number;
}

export class Sampler {
  private readonly heapVal: Float32Array;
  private readonly heapIdx: Int32Array;
  private readonly order: Int32Array;
  private size = 0;

  constructor(readonly vocabSize: number) {
    this.heapVal = new Float32Array(vocabSize);
    this.heapIdx = new Int32Array(vocabSize);
    this.order = new Int32Array(vocabSize);
  }

  /**
   * For logprobs: the log partition function of the raw row (a token's logprob is its logit minus
   * it) and the `topN` most likely ids, largest first. Call before `sample`, which may change the row.
   */
  logprobs(logits: Float32Array, topN: number): { logZ: number; top: TopLogprob[] } {
    const logZ = logSumExp(logits);
    const top: TopLogprob[] = [];
    if (topN > 0) {
      const n = this.selectTop(logits, topN);
      for (let i = 0; i < n; i++) {
        const id = this.order[i]!;
        top.push({ id, logprob: logits[id]! - logZ });
      }
    }
    return { logZ, top };
  }

  /** Picks the next id. `logits` (one row, vocabSize long) is modified in place. */
  sample(logits: Float32Array, params: SamplingParams, rng: Rng, seen?: TokenSet): number {
    const penalty = params.repetition_penalty ?? 1;
    if (penalty !== 1 && seen) {
      for (const id of seen.ids) {
        const v = logits[id]!;
        logits[id] = v < 0 ? v * penalty : v / penalty;
      }
    }
    if (params.temperature === 0) return argmax(logits);

    const invT = 1 / params.temperature;
    const topK = params.top_k && params.top_k > 0 ? Math.min(params.top_k, logits.length) : logits.length;
    const topP = params.top_p;
    const max = logits[argmax(logits)]!;

    if (topK === logits.length && topP >= 1) {
      // Plain temperature sampling: one pass for the mass, one for the draw; no selection.
      let z = 0;
      for (let i = 0; i < logits.length; i++) z += Math.exp((logits[i]! - max) * invT);
      let u = rng.next() * z;
      for (let i = 0; i < logits.length; i++) {
        u -= Math.exp((logits[i]! - max) * invT);
        if (u <= 0) return i;
      }
      return argmax(logits);
    }

    // Mass of the distribution top-p is taken from: all tokens, or only the top k.
    let zAll = 0;
    if (topK === logits.length) {
      for (let i = 0; i < logits.length; i++) zAll += Math.exp((logits[i]! - max) * invT);
    }
    let m = Math.min(topK, topK === logits.length ? 64 : topK);
    for (;;) {
      const n = this.selectTop(logits, m);
      if (n === 0) return argmax(logits);
      let z = zAll;
      if (topK < logits.length) {
        z = 0;
        for (let i = 0; i < n; i++) z += Math.exp((logits[this.order[i]!]! - max) * invT);
      }
      // Keep tokens while the mass before them is below top_p (the crossing token stays).
      let kept = 0;
      let mass = 0;
      while (kept < n && mass / z < topP) {
        mass += Math.exp((logits[this.order[kept]!]! - max) * invT);
        kept++;
      }
      if (mass / z >= topP || n >= topK) {
        let u = rng.next() * mass;
        for (let i = 0; i < kept; i++) {
          const id = this.order[i]!;
          u -= Math.exp((logits[id]! - max) * invT);
          if (u <= 0) return id;
        }
        return this.order[kept - 1]!;
      }
      m = Math.min(topK, m * 4);
    }
  }

  /**
   * Puts the `m` largest logits' ids into `order[0..m)`, largest first; returns how many.
   * A min-heap of size m holds the best seen so far; most entries lose to its root at once.
   */
  private selectTop(logits: Float32Array, m: number): number {
    const k = Math.min(m, logits.length);
    this.size = 0;
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i]!;
      if (Number.isNaN(v)) continue;
      if (this.size < k) this.push(v, i);
      else if (v > this.heapVal[0]! || (v === this.heapVal[0]! && i < this.heapIdx[0]!)) this.replaceRoot(v, i);
    }
    const n = this.size;
    for (let i = n - 1; i >= 0; i--) this.order[i] = this.popRoot();
    return n;
  }

  /** Heap order: smaller value first; at equal values the larger id first (it loses ties). */
  private less(a: number, b: number): boolean {
    const va = this.heapVal[a]!;
    const vb = this.heapVal[b]!;
    return va < vb || (va === vb && this.heapIdx[a]! > this.heapIdx[b]!);
  }

  private swap(a: number, b: number): void {
    const v = this.heapVal[a]!;
    this.heapVal[a] = this.heapVal[b]!;
    this.heapVal[b] = v;
    const i = this.heapIdx[a]!;
    this.heapIdx[a] = this.heapIdx[b]!;
    this.heapIdx[b] = i;
  }

  private push(v: number, idx: number): void {
    let c = this.size++;
    this.heapVal[c] = v;
    this.heapIdx[c] = idx;
    while (c > 0) {
      const p = (c - 1) >> 1;
      if (!this.less(c, p)) break;
      this.swap(c, p);
      c = p;
    }
  }

  private siftDown(start: number): void {
    let p = start;
    for (;;) {
      const l = 2 * p + 1;
      if (l >= this.size) return;
      const r = l + 1;
      const c = r < this.size && this.less(r, l) ? r : l;
      if (!this.less(c, p)) return;
      this.swap(c, p);
      p = c;
    }
  }

  private replaceRoot(v: number, idx: number): void {
    this.heapVal[0] = v;
    this.heapIdx[0] = idx;
    this.siftDown(0);
  }

  private popRoot(): number {
    const idx = this.heapIdx[0]!;
    this.size--;
    if (this.size > 0) {
      this.heapVal[0] = this.heapVal[this.size]!;
      this.heapIdx[0] = this.heapIdx[this.size]!;
      this.siftDown(0);
    }
    return idx;
  }
}

/** Index of the largest value (the first one on ties, as torch.argmax); NaN never wins. */
export function argmax(values: Float32Array): number {
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v > bestVal) {
      bestVal = v;
      best = i;
    }
  }
  return best;
}

export function logSumExp(values: Float32Array): number {
  const max = values[argmax(values)]!;
  let z = 0;
  for (let i = 0; i < values.length; i++) z += Math.exp(values[i]! - max);
  return max + Math.log(z);
}
