import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { defineBucketScript, takeBuckets, type BucketCall } from '../../src/gateway/limiter/bucket-script.js';
import { sleep } from '../../src/shared/net.js';

const UNIT = 60_000_000;
const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
let prefix: string;

before(() => {
  redis = new Redis(url);
  defineBucketScript(redis);
  prefix = `test:${randomBytes(4).toString('hex')}:`;
});
after(() => redis.disconnect());

const bucket = (name: string, burst: number, perMinute: number, cost = 1, refund = 0): BucketCall => ({
  key: `${prefix}{x}:${name}`,
  burst,
  perMinute,
  cost,
  refund,
});

test('a fresh bucket holds its burst; the next take is refused with the time one token needs', async () => {
  const b = bucket('burst', 5, 60);
  for (let i = 0; i < 5; i++) {
    const reply = await takeBuckets(redis, [b]);
    assert.equal(reply.allowed, true);
    assert.equal(reply.buckets[0]!.remaining, 4 - i);
  }
  const refused = await takeBuckets(redis, [b]);
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.remaining, 0);
  // 60 a minute is one a second; a few ms of refill have passed since the bucket emptied.
  assert.ok(refused.buckets[0]!.waitMs > 950 && refused.buckets[0]!.waitMs <= 1000, String(refused.buckets[0]!.waitMs));
});

test('levels are stored exactly and refill to the unit with Redis time', async () => {
  const b = bucket('refill', 5, 6000); // 100 tokens a second: 6000 units a µs
  await takeBuckets(redis, [{ ...b, cost: 5 }]);
  const stored = await redis.hgetall(b.key);
  assert.equal(stored.l, '0', 'emptied in one call');
  assert.match(stored.t!, /^\d{16}$/, 'µs since the epoch');
  await sleep(25);
  const reply = await takeBuckets(redis, [{ ...b, cost: 0 }]);
  const expected = (reply.nowUs - Number(stored.t)) * 6000;
  assert.equal(reply.buckets[0]!.remaining, Math.floor(Math.min(5 * UNIT, expected) / UNIT));
  const after = await redis.hgetall(b.key);
  if (expected < 5 * UNIT) {
    assert.match(after.l!, /^\d+$/, 'an integer, no exponent');
    assert.equal(Number(after.l), expected, 'refill is exact to the unit');
    assert.equal(Number(after.t), reply.nowUs);
  } else {
    assert.equal(after.l, undefined, 'full again: the key is gone');
  }
});

test('all or nothing: one short bucket refuses the call and nothing is taken anywhere', async () => {
  const req = bucket('aon-req', 10, 60);
  const tok = bucket('aon-tok', 100, 60, 80);
  assert.equal((await takeBuckets(redis, [req, tok])).allowed, true);
  const refused = await takeBuckets(redis, [req, tok]);
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.waitMs, 0, 'the request bucket had room');
  assert.ok(refused.buckets[1]!.waitMs > 0, 'the token bucket was short');
  const look = await takeBuckets(redis, [{ ...req, cost: 0 }, { ...tok, cost: 0 }]);
  assert.equal(look.buckets[0]!.remaining, 9, 'the refused call took no request token');
  assert.equal(look.buckets[1]!.remaining, 20);
});

test('refunds are added before the take, are kept even when the take is refused, and stop at the burst', async () => {
  const tok = bucket('refund', 100, 1, 100);
  assert.equal((await takeBuckets(redis, [tok])).allowed, true);
  const refused = await takeBuckets(redis, [{ ...tok, cost: 90, refund: 40 }]);
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.remaining, 40, 'the refund stayed');
  const taken = await takeBuckets(redis, [{ ...tok, cost: 50, refund: 30 }]);
  assert.equal(taken.allowed, true);
  assert.equal(taken.buckets[0]!.remaining, 20);
  const capped = await takeBuckets(redis, [{ ...tok, cost: 0, refund: 1_000 }]);
  assert.equal(capped.buckets[0]!.remaining, 100);
});

test('keys expire when their bucket would be full; a full bucket leaves no key', async () => {
  const b = bucket('ttl', 10, 600); // 10 tokens a second
  await takeBuckets(redis, [{ ...b, cost: 4 }]);
  const pttl = await redis.pttl(b.key);
  assert.ok(pttl > 350 && pttl <= 400, `4 tokens at 10 a second: ${pttl} ms`);
  await takeBuckets(redis, [{ ...b, cost: 0, refund: 4 }]);
  assert.equal(await redis.exists(b.key), 0);
});

test('concurrent callers on separate connections take exactly the burst', async () => {
  const clients = Array.from({ length: 4 }, () => new Redis(url));
  try {
    for (const c of clients) defineBucketScript(c);
    const b = bucket('race', 50, 1); // one token a minute: nothing refills during the race
    const replies = await Promise.all(
      Array.from({ length: 400 }, (_, i) => takeBuckets(clients[i % 4]!, [b])),
    );
    assert.equal(replies.filter((r) => r.allowed).length, 50);
  } finally {
    for (const c of clients) c.disconnect();
  }
});
