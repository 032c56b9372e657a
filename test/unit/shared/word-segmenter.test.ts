/**
 * The word segmenter against Python jieba 0.42.1 (test/fixtures/python-reference: texts where
 * jieba-rs and Python jieba part, real legal Q&A, random strings) and the golden BLEU set's tokens.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Jieba } from '@node-rs/jieba';
import { dict } from '@node-rs/jieba/dict.js';
import { cutWords } from '../../../src/shared/word-segmenter.js';
import { readJson as readJsonFile } from '../../helpers/json.js';
import { PROJECT_ROOT } from '../../helpers/paths.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures');
const readJson = <T>(path: string): T => readJsonFile<T>(join(FIXTURES, path));

interface CutCase {
  text: string;
  tokens: string[];
}

test('tokens equal Python jieba’s, spaces, punctuation and rare characters included', () => {
  const { cases } = readJson<{ cases: CutCase[] }>('python-reference/jieba-cut.json');
  assert.ok(cases.length > 500);
  for (const c of cases) assert.deepEqual(cutWords(c.text), c.tokens, JSON.stringify(c.text));
});

test('the reference cases include ones where jieba-rs alone cuts differently (the corrections are needed)', () => {
  const { cases } = readJson<{ cases: CutCase[] }>('python-reference/jieba-cut.json');
  const raw = Jieba.withDict(dict);
  const apart = cases.filter((c) => JSON.stringify(raw.cut(c.text, true)) !== JSON.stringify(c.tokens));
  const texts = apart.map((c) => c.text);
  assert.ok(texts.includes('处3-5年有期徒刑'), 'the HMM number pattern');
  assert.ok(texts.includes('㐀㐁㐂是扩展A区'), 'CJK extension A');
  assert.ok(apart.length >= 50, `${apart.length} cases apart`);
});

test('the golden BLEU set’s tokens', () => {
  const { cases } = readJson<{ cases: Array<{ prediction: string; reference: string; prediction_tokens: string[]; reference_tokens: string[] }> }>('golden/eval/bleu.json');
  for (const c of cases) {
    assert.deepEqual(cutWords(c.prediction), c.prediction_tokens);
    assert.deepEqual(cutWords(c.reference), c.reference_tokens);
  }
});

test('legal words come out whole', () => {
  assert.deepEqual(cutWords('诉讼时效期间为三年'), ['诉讼时效', '期间', '为', '三年']);
  assert.deepEqual(cutWords('劳动合同到期公司不续签有补偿吗'), ['劳动合同', '到期', '公司', '不', '续签', '有', '补偿', '吗']);
});

test('garbage and long text: tokens that join to the text, in time linear in its length', () => {
  const garbage = ['', ' ', '\u0000\u0001\u007f', '😀'.repeat(1000), '👨‍👩‍👧‍👦🇨🇳', '\u202e押金\u200b\ufeff', '%s${x}<script>', '1-'.repeat(5000), '-1'.repeat(5000), 'a'.repeat(100_000)];
  for (const text of garbage) assert.equal(cutWords(text).join(''), text, JSON.stringify(text.slice(0, 20)));
  // A lone surrogate is a token of its own, as in Python (jieba-rs would be handed U+FFFD).
  assert.deepEqual(cutWords('\udfff押金\ud800'), ['\udfff', '押金', '\ud800']);

  const sentence = '劳动合同期满，用人单位不续订的，应当向劳动者支付经济补偿。';
  const time = (text: string) => {
    const t0 = performance.now();
    const tokens = cutWords(text);
    return { ms: performance.now() - t0, tokens };
  };
  time(sentence.repeat(100));
  const short = time(sentence.repeat(300));
  const long = time(sentence.repeat(3000));
  assert.equal(long.tokens.length, 10 * short.tokens.length);
  // ICU took seconds on 100,000 characters; jieba's path and HMM are linear. The bound is loose (shared cores).
  assert.ok(long.ms < Math.max(1000, 40 * short.ms), `${sentence.length * 3000} characters in ${long.ms.toFixed(0)} ms (a tenth: ${short.ms.toFixed(1)} ms)`);
});
