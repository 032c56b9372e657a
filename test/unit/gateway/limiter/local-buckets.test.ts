import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalBuckets } from '../../../../src/gateway/limiter/local-buckets.js';
import type { BucketSpec, Take } from '../../../../src/gateway/limiter/bucket-script.js';
import { decodeReply } from '../../../helpers/limiter.js';

const R: BucketSpec = { name: 'requests', key: 'r', burst: 10, perMinute: 600, unit: 'requests' };
const T: BucketSpec = { name: 'tokens', key: 't', burst: 1000, perMinute: 60_000, unit: 'tokens' };

/** A call on the request bucket alone, the token bucket alone, or both. */
class Local {
  constructor(private readonly buckets: LocalBuckets) {}
  req(requests = 1, at = 0) {
    return decodeReply(this.buckets.take([R], { requests, tokens: 0, refund: 0 }, at));
  }
  tok(tokens: number, refund = 0, at = 0) {
    return decodeReply(this.buckets.take([T], { requests: 0, tokens, refund }, at));
  }
  both(take: Take, at = 0) {
    return decodeReply(this.buckets.take([R, T], take, at));
  }
}

test('a bucket admits its burst, then refuses with the wait until one token refills', () => {
  const b = new Local(new LocalBuckets(1));
  for (let i = 0; i < 10; i++) assert.equal(b.req().allowed, true, `request ${i}`);
  const refused = b.req();
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.remaining, 0);
  assert.equal(refused.buckets[0]!.waitMs, 100, '600 a minute is one every 100 ms');
  assert.equal(b.req(1, 99).allowed, false);
  assert.equal(b.req(1, 100).allowed, true);
});

test('refill over time matches the rate and stops at the burst', () => {
  const b = new Local(new LocalBuckets(1));
  for (let i = 0; i < 10; i++) b.req();
  assert.equal(b.req(0, 550).buckets[0]!.remaining, 5);
  assert.equal(b.req(0, 60_000).buckets[0]!.remaining, 10);
});

test('all or nothing: a short bucket leaves the others untouched', () => {
  const b = new Local(new LocalBuckets(1));
  assert.equal(b.both({ requests: 1, tokens: 900, refund: 0 }).allowed, true);
  const refused = b.both({ requests: 1, tokens: 200, refund: 0 });
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.waitMs, 0, 'the request bucket was not the short one');
  assert.equal(refused.buckets[1]!.waitMs, 100);
  assert.equal(b.both({ requests: 0, tokens: 0, refund: 0 }).buckets[0]!.remaining, 9, 'nothing was taken by the refusal');
});

test('a refund is added before the take and capped at the burst', () => {
  const b = new Local(new LocalBuckets(1));
  b.tok(1000);
  assert.equal(b.tok(0, 300).buckets[0]!.remaining, 300);
  assert.equal(b.tok(0, 5000).buckets[0]!.remaining, 1000);
  assert.equal(b.both({ requests: 0, tokens: 0, refund: 500 }).buckets[0]!.remaining, 10, 'request buckets get no refund');
});

test('replicas shrink every bucket to its share', () => {
  const b = new Local(new LocalBuckets(4));
  let admitted = 0;
  for (let i = 0; i < 20; i++) if (b.req().allowed) admitted++;
  assert.equal(admitted, 2, 'burst 10 over 4 replicas');
  assert.equal(b.req().buckets[0]!.waitMs, 400, 'rate 600 over 4 replicas: one every 400 ms');
});

test('a cost above a shrunk bucket is admitted from a full one, leaving debt', () => {
  const b = new Local(new LocalBuckets(4)); // token share: burst 250
  assert.equal(b.tok(600).allowed, true);
  const next = b.tok(1);
  assert.equal(next.allowed, false);
  assert.ok(next.buckets[0]!.waitMs > 0);
  // From -350 it takes 600 tokens at 250 a second, 2.4 s, to be full again.
  assert.equal(b.tok(600, 0, 2399).allowed, false);
  assert.equal(b.tok(600, 0, 2400).allowed, true);
});

test('sweep forgets buckets that are full again', () => {
  const buckets = new LocalBuckets(1);
  const b = buckets;
  new Local(buckets).both({ requests: 1, tokens: 10, refund: 0 });
  assert.equal(b.size, 2);
  b.sweep(5);
  assert.equal(b.size, 2);
  b.sweep(10);
  assert.equal(b.size, 1, 'the token bucket refilled 10 tokens in 10 ms');
  b.sweep(100);
  assert.equal(b.size, 0);
});
