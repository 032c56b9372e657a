/**
 * The scores ChatGLM3's finetune_demo reports in `compute_metrics`, for one answer against one
 * reference, computed on Chinese word segments:
 *
 * - Segmentation: `list(jieba.cut(text.strip()))` as finetune_demo takes it (jieba's default
 *   mode with the HMM, `cutWords` in src/shared/word-segmenter.ts), with Python's `str.strip`.
 *   Punctuation and every space are tokens of their own, so BLEU counts spaces as jieba does.
 * - BLEU-4: NLTK 3.8's `sentence_bleu([reference], hypothesis)` with uniform weights and
 *   `SmoothingFunction().method3` (NIST geometric smoothing: the k-th n-gram order with no match
 *   counts as 1 / (2^k · number of hypothesis n-grams, at least 1)); 0 when no unigram matches
 *   (so also for an empty answer); brevity penalty 1 for a longer answer, 0 for an empty one, else
 *   exp(1 − r/c). NLTK adds the four logarithms with `math.fsum`, here left to right: they may
 *   differ in the last bit or so, far below the 1e-4 the golden test allows. Reported × 100
 *   (finetune_demo prints it in 0..1; divide by 100 to compare).
 * - ROUGE-1/2/L F: the `rouge` package (pltrdy) that finetune_demo calls on space-joined tokens:
 *   the text is cut into "sentences" at '.', n-grams are counted as sets (distinct n-grams),
 *   ROUGE-L is its summary-level union LCS over distinct words, F = 2PR / (P + R + 1e-8); × 100
 *   and rounded to 4 decimals as finetune_demo does. An empty answer scores 0 (the rouge package
 *   raises on it).
 *
 * Averages over answers are plain means, as finetune_demo's `np.mean`.
 */
import { cutWords } from '../shared/word-segmenter.js';

export interface Scores {
  'bleu-4': number;
  'rouge-1': number;
  'rouge-2': number;
  'rouge-l': number;
}

export const METRICS = ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const satisfies ReadonlyArray<keyof Scores>;

/** The characters Python's `str.isspace` accepts, which `str.strip()` removes (JS `trim` differs: it keeps U+001C–U+001F and U+0085, removes U+FEFF). */
const PY_SPACE = '[\\t-\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');

/** Word segments of a text as finetune_demo takes them: jieba's tokens of the stripped text, punctuation and spaces included. */
export function segment(text: string): string[] {
  return cutWords(text.replace(PY_STRIP, ''));
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const key = tokens.slice(i, i + n).join('\u0000');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** NLTK sentence_bleu with one reference, weights (¼,¼,¼,¼) and smoothing method 3; in 0..1. */
export function bleu4(reference: string[], hypothesis: string[]): number {
  const precisions: Array<{ num: number; den: number }> = [];
  for (let n = 1; n <= 4; n++) {
    const hyp = ngramCounts(hypothesis, n);
    const ref = ngramCounts(reference, n);
    let clipped = 0;
    let total = 0;
    for (const [gram, count] of hyp) {
      clipped += Math.min(count, ref.get(gram) ?? 0);
      total += count;
    }
    precisions.push({ num: clipped, den: Math.max(1, total) });
  }
  if (precisions[0]!.num === 0) return 0;
  let k = 1;
  let logSum = 0;
  for (const { num, den } of precisions) {
    const p = num === 0 ? 1 / (2 ** k++ * den) : num / den;
    logSum += 0.25 * Math.log(p);
  }
  const c = hypothesis.length;
  const r = reference.length;
  const bp = c > r ? 1 : c === 0 ? 0 : Math.exp(1 - r / c);
  return bp * Math.exp(logSum);
}

/** The rouge package's preprocessing: space-joined tokens cut at '.', whitespace folded. */
function rougeSentences(tokens: string[]): string[][] {
  return tokens
    .join(' ')
    .split('.')
    .filter((s) => s.length > 0)
    .map((s) => s.split(/\s+/).filter(Boolean).join(' ').split(' '));
}

function fScore(overlap: number, hypCount: number, refCount: number): number {
  const p = hypCount === 0 ? 0 : overlap / hypCount;
  const r = refCount === 0 ? 0 : overlap / refCount;
  return (2 * (p * r)) / (p + r + 1e-8);
}

function distinctNgrams(words: string[], n: number): Set<string> {
  return new Set(ngramCounts(words, n).keys());
}

function rougeN(hyp: string[][], ref: string[][], n: number): number {
  const h = distinctNgrams(hyp.flat(), n);
  const r = distinctNgrams(ref.flat(), n);
  let overlap = 0;
  for (const g of h) if (r.has(g)) overlap++;
  return fScore(overlap, h.size, r.size);
}

/**
 * The words of one longest common subsequence of x and y, chosen as the rouge package's
 * `_recon_lcs` chooses it (on a tie it steps along y), since ROUGE-L counts its distinct words.
 */
function lcsWords(x: string[], y: string[]): string[] {
  const table: Uint32Array[] = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1));
  for (let i = 1; i <= x.length; i++) {
    for (let j = 1; j <= y.length; j++) {
      table[i]![j] = x[i - 1] === y[j - 1] ? table[i - 1]![j - 1]! + 1 : Math.max(table[i - 1]![j]!, table[i]![j - 1]!);
    }
  }
  const words: string[] = [];
  let i = x.length;
  let j = y.length;
  while (i > 0 && j > 0) {
    if (x[i - 1] === y[j - 1]) {
      words.push(x[i - 1]!);
      i--;
      j--;
    } else if (table[i - 1]![j]! > table[i]![j - 1]!) {
      i--;
    } else {
      j--;
    }
  }
  return words.reverse();
}

function rougeL(hyp: string[][], ref: string[][]): number {
  const m = new Set(ref.flat()).size;
  const n = new Set(hyp.flat()).size;
  const union = new Set<string>();
  for (const refSentence of ref) {
    for (const hypSentence of hyp) for (const w of lcsWords(refSentence, hypSentence)) union.add(w);
  }
  return fScore(union.size, n, m);
}

const round4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** All four scores (× 100) of one answer against its reference. */
export function scoreAnswer(answer: string, reference: string): Scores {
  const hypTokens = segment(answer);
  const refTokens = segment(reference);
  const bleu = 100 * bleu4(refTokens, hypTokens);
  const hyp = rougeSentences(hypTokens);
  const ref = rougeSentences(refTokens);
  if (hypTokens.length === 0 || hyp.length === 0 || ref.length === 0) {
    return { 'bleu-4': bleu, 'rouge-1': 0, 'rouge-2': 0, 'rouge-l': 0 };
  }
  return {
    'bleu-4': bleu,
    'rouge-1': round4(100 * rougeN(hyp, ref, 1)),
    'rouge-2': round4(100 * rougeN(hyp, ref, 2)),
    'rouge-l': round4(100 * rougeL(hyp, ref)),
  };
}

/** Mean of each score over answers (0 for none). */
export function meanScores(all: Scores[]): Scores {
  const out: Scores = { 'bleu-4': 0, 'rouge-1': 0, 'rouge-2': 0, 'rouge-l': 0 };
  if (all.length === 0) return out;
  for (const s of all) for (const k of METRICS) out[k] += s[k];
  for (const k of METRICS) out[k] /= all.length;
  return out;
}
