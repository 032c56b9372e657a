import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Sampler, TokenSet, argmax, createRng, logSumExp, type SamplingParams } from '../../../src/worker/sampling.js';

const GREEDY: SamplingParams = { temperature: 0, top_p: 1 };

function softmax(logits: number[], t = 1): number[] {
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp((l - m) / t));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

function counts(sampler: Sampler, logits: number[], params: SamplingParams, n: number, seed = 1): number[] {
  const rng = createRng(seed);
  const c = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < n; i++) c[sampler.sample(Float32Array.from(logits), params, rng)]!++;
  return c;
}

test('temperature 0 is argmax, first index on ties, NaN never wins', () => {
  const s = new Sampler(5);
  assert.equal(s.sample(Float32Array.from([1, 3, 2, 3, 0]), GREEDY, createRng(1)), 1);
  assert.equal(argmax(Float32Array.from([Number.NaN, -1, -2])), 1);
});

test('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
  const s = new Sampler(3);
  const seen = new TokenSet(3, [0, 2]);
  // 0: 2.0 → 1.0; 1: 1.5 stays; 2: -0.1 → -0.2
  const row = Float32Array.from([2, 1.5, -0.1]);
  assert.equal(s.sample(row, { ...GREEDY, repetition_penalty: 2 }, createRng(1), seen), 1);
  assert.deepEqual([...row], [1, 1.5, Math.fround(-0.2)]);
  seen.add(1);
  seen.add(1);
  assert.deepEqual(seen.ids, [0, 2, 1]);
});

test('the same seed gives the same draws; another seed other draws', () => {
  const s = new Sampler(50);
  const logits = Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);
  const params = { temperature: 1, top_p: 0.95 };
  const run = (seed: number) => {
    const rng = createRng(seed);
    return Array.from({ length: 40 }, () => s.sample(Float32Array.from(logits), params, rng));
  };
  assert.deepEqual(run(42), run(42));
  assert.notDeepEqual(run(42), run(43));
  assert.deepEqual(run(2 ** 40 + 5), run(2 ** 40 + 5));
  assert.notDeepEqual(run(2 ** 40 + 5), run(5));
});

test('temperature sampling follows softmax(logits / T)', () => {
  const s = new Sampler(4);
  const logits = [0, 1, 2, 0.5];
  const n = 40_000;
  for (const t of [0.5, 1, 2]) {
    const c = counts(s, logits, { temperature: t, top_p: 1 }, n, 7);
    const p = softmax(logits, t);
    c.forEach((k, i) => assert.ok(Math.abs(k / n - p[i]!) < 0.01, `T=${t} token ${i}: ${k / n} vs ${p[i]}`));
  }
});

test('top-k and top-p keep only the nucleus and renormalise it (Hugging Face semantics)', () => {
  const s = new Sampler(5);
  const logits = [Math.log(0.5), Math.log(0.25), Math.log(0.15), Math.log(0.07), Math.log(0.03)];
  const n = 30_000;
  // top_p 0.7: 0.5 < 0.7 so the second token (crossing 0.7) is kept, the third is not
  let c = counts(s, logits, { temperature: 1, top_p: 0.7 }, n, 3);
  assert.deepEqual(c.slice(2), [0, 0, 0]);
  assert.ok(Math.abs(c[0]! / n - 2 / 3) < 0.015);
  // top_k 3 then top_p 0.95 over the renormalised three (0.556, 0.278, 0.167)
  c = counts(s, logits, { temperature: 1, top_p: 0.95, top_k: 3 }, n, 4);
  assert.deepEqual(c.slice(3), [0, 0]);
  assert.ok(Math.abs(c[2]! / n - 0.15 / 0.9) < 0.015);
  // top_k 1 and a tiny top_p are greedy
  assert.deepEqual(counts(s, logits, { temperature: 1, top_p: 1, top_k: 1 }, 500).slice(1), [0, 0, 0, 0]);
  assert.deepEqual(counts(s, logits, { temperature: 1, top_p: 0.01 }, 500).slice(1), [0, 0, 0, 0]);
});

test('top-p on a large flat vocabulary widens its candidate set until it holds top_p', () => {
  const v = 65_024;
  const s = new Sampler(v);
  const logits = new Float32Array(v);
  for (let i = 0; i < v; i++) logits[i] = i < 1000 ? 5 : -5; // 1000 equally likely, the rest nearly never
  const rng = createRng(9);
  const seen = new Set<number>();
  for (let i = 0; i < 300; i++) {
    const id = s.sample(Float32Array.from(logits), { temperature: 1, top_p: 0.9 }, rng);
    assert.ok(id < 1000, `id ${id} is outside the nucleus`);
    seen.add(id);
  }
  assert.ok(seen.size > 200, `only ${seen.size} of the nucleus drawn`);
});

test('logprobs are the log-softmax of the raw logits with the top N in order', () => {
  const s = new Sampler(6);
  const logits = [0.3, -1.2, 2.5, 2.5, 0.0, -7];
  const row = Float32Array.from(logits);
  const { logZ, top } = s.logprobs(row, 3);
  const lse = Math.log(logits.reduce((a, l) => a + Math.exp(l), 0));
  assert.ok(Math.abs(logZ - lse) < 1e-6);
  assert.deepEqual(top.map((t) => t.id), [2, 3, 0]);
  for (const t of top) assert.ok(Math.abs(t.logprob - (logits[t.id]! - lse)) < 1e-6);
  assert.ok(Math.abs(logSumExp(row) - lse) < 1e-6);
  assert.deepEqual(s.logprobs(row, 0).top, []);
});
