import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { bleu4, meanScores, scoreAnswer, segment } from '../../../src/data/metrics.js';
import { readJson as readJsonFile } from '../../helpers/json.js';
import { PROJECT_ROOT } from '../../helpers/paths.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures');
const readJson = <T>(path: string): T => readJsonFile<T>(join(FIXTURES, path));

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-3, `${what}: ${actual} ≠ ${expected}`);

test('identical texts score 100 on every metric; disjoint texts score 0', () => {
  const text = '根据《劳动合同法》第四十六条，用人单位应当支付经济补偿。';
  assert.deepEqual(scoreAnswer(text, text), { 'bleu-4': 100, 'rouge-1': 100, 'rouge-2': 100, 'rouge-l': 100 });
  assert.deepEqual(scoreAnswer('甲乙丙丁', '戊己庚辛'), { 'bleu-4': 0, 'rouge-1': 0, 'rouge-2': 0, 'rouge-l': 0 });
  // An empty answer scores 0 rather than failing.
  assert.deepEqual(scoreAnswer('   ', text), { 'bleu-4': 0, 'rouge-1': 0, 'rouge-2': 0, 'rouge-l': 0 });
});

test('a partial overlap, worked out by hand', () => {
  // reference A B C D E (5 words), answer A B C X (4 words).
  // BLEU-4: p1 = 3/4 (A, B, C match); p2 = 2/3 (AB, BC of AB BC CX); p3 = 1/2 (ABC of ABC BCX);
  //   p4 = 0/1 → method 3 makes it 1/(2^1 · 1) = 1/2. The answer is shorter: BP = exp(1 − 5/4).
  //   BLEU = exp(−0.25) · (3/4 · 2/3 · 1/2 · 1/2)^(1/4) = exp(−0.25) · 0.125^0.25
  //        = 0.7788008 · 0.5946036 = 0.4630777 → 46.30777.
  // ROUGE-1: distinct unigrams: 3 shared of 4 (P = 3/4) and of 5 (R = 3/5): F = 2PR/(P+R) = 0.9/1.35 = 66.6667.
  // ROUGE-2: distinct bigrams AB BC CX vs AB BC CD DE: 2 shared, P = 2/3, R = 1/2: F = (2/3)/(7/6) = 4/7 = 57.1429.
  // ROUGE-L: the LCS is A B C: 3 distinct words over 4 and 5 distinct words: the same as ROUGE-1, 66.6667.
  close(100 * bleu4(['A', 'B', 'C', 'D', 'E'], ['A', 'B', 'C', 'X']), 46.30777, 'bleu-4');
  // The texts' spaces are tokens for BLEU (as jieba gives them) but not for ROUGE (joined and split again on spaces).
  const s = scoreAnswer('A B C X', 'A B C D E');
  assert.equal(s['rouge-1'], 66.6667);
  assert.equal(s['rouge-2'], 57.1429);
  assert.equal(s['rouge-l'], 66.6667);
});

test('BLEU clips repeated words and smooths each missing order with the next power of two', () => {
  // answer "the the the", reference "the cat".
  // p1 = 1/3 (three "the", the reference has one); p2 = 0 of 2 bigrams → 1/(2^1 · 2) = 1/4;
  // p3 = 0 of 1 trigram → 1/(2^2 · 1) = 1/4; p4 = no 4-grams, counted as 1 → 1/(2^3 · 1) = 1/8.
  // The answer is longer (3 > 2): BP = 1. BLEU = (1/3 · 1/4 · 1/4 · 1/8)^(1/4) = 384^(−1/4) = 0.2259012.
  close(bleu4(['the', 'cat'], ['the', 'the', 'the']), 0.2259012, 'bleu');
  // ROUGE counts distinct unigrams: {the} against {the, cat}: P = 1, R = 1/2, F = 66.6667.
  assert.equal(scoreAnswer('the the the', 'the cat')['rouge-1'], 66.6667);
  // An answer of one word that matches: p1 = 1, p2..p4 smoothed 1/2, 1/4, 1/8 (one n-gram each, as NLTK counts
  // at least one); BP = exp(1 − 2/1). BLEU = e^(−1) · (1/64)^(1/4) = 0.3678794 · 0.3535534 = 0.1300644.
  close(bleu4(['the', 'cat'], ['the']), 0.1300644, 'short bleu');
});

test('ROUGE-L takes the LCS the rouge package picks and counts its distinct words', () => {
  // reference "a b a", answer "b a b": LCS length 2, either "b a" or "a b"; both have 2 distinct
  // words of 2 distinct in each text: P = R = 1 → 100 (the epsilon is rounded away).
  assert.equal(scoreAnswer('b a b', 'a b a')['rouge-l'], 100);
  // '.' cuts "sentences" as the rouge package does, but its n-grams run over the flattened words:
  // "x . y" → sentences "x", "y" → words x y → the bigram (x y), as in the reference.
  assert.equal(scoreAnswer('x . y', 'x y')['rouge-2'], 100);
});

test('segmentation is jieba’s on the text stripped as Python strips it: inner spaces stay tokens', () => {
  assert.deepEqual(segment('  劳动合同 到期后，用人单位不续签的。\n'), ['劳动合同', ' ', '到期', '后', '，', '用人单位', '不', '续签', '的', '。']);
  // Python's str.strip removes U+001C–U+001F and U+0085 and keeps U+FEFF; JavaScript's trim does the opposite.
  assert.deepEqual(segment('\u001c\u0085押金\u3000\u001f'), ['押金']);
  assert.deepEqual(segment('\ufeff押金'), ['\ufeff', '押金']);
  assert.deepEqual(segment(' \t\r\n'), []);
});

interface GoldenCase {
  prediction: string;
  reference: string;
  prediction_tokens: string[];
  reference_tokens: string[];
  bleu4: number;
}

test('BLEU-4 equals finetune_demo’s on the golden set (jieba tokens, NLTK 3.8, method 3)', () => {
  const { cases } = readJson<{ cases: GoldenCase[] }>('golden/eval/bleu.json');
  assert.ok(cases.length >= 8);
  for (const c of cases) {
    assert.deepEqual(segment(c.prediction), c.prediction_tokens, c.prediction);
    assert.deepEqual(segment(c.reference), c.reference_tokens, c.reference);
    const got = scoreAnswer(c.prediction, c.reference)['bleu-4'];
    assert.ok(Math.abs(got - c.bleu4) <= 1e-4, `${c.prediction}: ${got} ≠ ${c.bleu4}`);
  }
});

test('BLEU-4 equals NLTK’s at the edges: empty texts, no match, fewer than 4 tokens, longer answers, clipping', () => {
  const { cases } = readJson<{ cases: Array<{ prediction: string[]; reference: string[]; bleu4: number }> }>('python-reference/bleu.json');
  assert.ok(cases.length >= 16);
  for (const c of cases) {
    const got = 100 * bleu4(c.reference, c.prediction);
    assert.ok(Math.abs(got - c.bleu4) <= 1e-4, `${JSON.stringify(c.prediction)} against ${JSON.stringify(c.reference)}: ${got} ≠ ${c.bleu4}`);
  }
});

test('means are plain averages per metric', () => {
  const m = meanScores([
    { 'bleu-4': 10, 'rouge-1': 20, 'rouge-2': 30, 'rouge-l': 40 },
    { 'bleu-4': 30, 'rouge-1': 40, 'rouge-2': 50, 'rouge-l': 60 },
  ]);
  assert.deepEqual(m, { 'bleu-4': 20, 'rouge-1': 30, 'rouge-2': 40, 'rouge-l': 50 });
  assert.deepEqual(meanScores([]), { 'bleu-4': 0, 'rouge-1': 0, 'rouge-2': 0, 'rouge-l': 0 });
});
