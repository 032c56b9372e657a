import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBuckets } from '../../src/gateway/limiter/local-buckets.js';
import type { BucketCall } from '../../src/gateway/limiter/bucket-script.js';

const req = (cost = 1, refund = 0): BucketCall => ({ key: 'r', burst: 10, perMinute: 600, cost, refund });
const tok = (cost: number, refund = 0): BucketCall => ({ key: 't', burst: 1000, perMinute: 60_000, cost, refund });

test('a bucket admits its burst, then refuses with the wait until one token refills', () => {
  const b = new LocalBuckets(1);
  for (let i = 0; i < 10; i++) assert.equal(b.take([req()], 0).allowed, true, `request ${i}`);
  const refused = b.take([req()], 0);
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.remaining, 0);
  assert.equal(refused.buckets[0]!.waitMs, 100, '600 a minute is one every 100 ms');
  assert.equal(b.take([req()], 99).allowed, false);
  assert.equal(b.take([req()], 100).allowed, true);
});

test('refill over time matches the rate and stops at the burst', () => {
  const b = new LocalBuckets(1);
  for (let i = 0; i < 10; i++) b.take([req()], 0);
  assert.equal(b.take([req(0)], 550).buckets[0]!.remaining, 5);
  assert.equal(b.take([req(0)], 60_000).buckets[0]!.remaining, 10);
});

test('all or nothing: a short bucket leaves the others untouched', () => {
  const b = new LocalBuckets(1);
  assert.equal(b.take([req(), tok(900)], 0).allowed, true);
  const refused = b.take([req(), tok(200)], 0);
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.waitMs, 0, 'the request bucket was not the short one');
  assert.equal(refused.buckets[1]!.waitMs, 100);
  assert.equal(b.take([req(0), tok(0)], 0).buckets[0]!.remaining, 9, 'nothing was taken by the refusal');
});

test('a refund is added before the take and capped at the burst', () => {
  const b = new LocalBuckets(1);
  b.take([tok(1000)], 0);
  assert.equal(b.take([tok(0, 300)], 0).buckets[0]!.remaining, 300);
  assert.equal(b.take([tok(0, 5000)], 0).buckets[0]!.remaining, 1000);
});

test('replicas shrink every bucket to its share', () => {
  const b = new LocalBuckets(4);
  let admitted = 0;
  for (let i = 0; i < 20; i++) if (b.take([req()], 0).allowed) admitted++;
  assert.equal(admitted, 2, 'burst 10 over 4 replicas');
  assert.equal(b.take([req()], 0).buckets[0]!.waitMs, 400, 'rate 600 over 4 replicas: one every 400 ms');
});

test('a cost above a shrunk bucket is admitted from a full one, leaving debt', () => {
  const b = new LocalBuckets(4); // token share: burst 250
  assert.equal(b.take([tok(600)], 0).allowed, true);
  const next = b.take([tok(1)], 0);
  assert.equal(next.allowed, false);
  assert.ok(next.buckets[0]!.waitMs > 0);
  // From -350 it takes 600 tokens at 250 a second, 2.4 s, to be full again.
  assert.equal(b.take([tok(600)], 2399).allowed, false);
  assert.equal(b.take([tok(600)], 2400).allowed, true);
});

test('sweep forgets buckets that are full again', () => {
  const b = new LocalBuckets(1);
  b.take([req(), tok(10)], 0);
  assert.equal(b.size, 2);
  b.sweep(5);
  assert.equal(b.size, 2);
  b.sweep(10);
  assert.equal(b.size, 1, 'the token bucket refilled 10 tokens in 10 ms');
  b.sweep(100);
  assert.equal(b.size, 0);
});
