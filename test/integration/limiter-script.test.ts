import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { defineBucketScript, takeBatch, takeBuckets, UNIT, type BucketSpec, type Take } from '../../src/gateway/limiter/bucket-script.js';
import { sleep } from '../../src/shared/net.js';
import { decodeReply, readBucket } from '../helpers/limiter.js';

const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
let redis: Redis;
let prefix: string;

before(() => {
  redis = new Redis(url);
  defineBucketScript(redis);
  prefix = `test:${randomBytes(4).toString('hex')}:`;
});
after(() => redis.disconnect());

const spec = (name: string, burst: number, perMinute: number, unit: 'requests' | 'tokens' = 'tokens'): BucketSpec => ({
  name: unit,
  key: `${prefix}{x}:${name}`,
  burst,
  perMinute,
  unit,
});
const takes = (tokens: number, refund = 0, requests = 1): Take => ({ requests, tokens, refund });
const run = async (specs: BucketSpec[], take: Take) => decodeReply(await takeBuckets(redis, specs, take));

test('a fresh bucket holds its burst; the next take is refused with the time one token needs', async () => {
  const b = spec('burst', 5, 60);
  for (let i = 0; i < 5; i++) {
    const reply = await run([b], takes(1));
    assert.equal(reply.allowed, true);
    assert.equal(reply.buckets[0]!.remaining, 4 - i);
  }
  const refused = await run([b], takes(1));
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.remaining, 0);
  // 60 a minute is one a second; a few ms of refill have passed since the bucket emptied.
  assert.ok(refused.buckets[0]!.waitMs > 900 && refused.buckets[0]!.waitMs <= 1000, String(refused.buckets[0]!.waitMs));
});

test('levels are stored exactly and refill to the unit with Redis time', async () => {
  const b = spec('refill', 5, 6000); // 100 tokens a second: 6000 units a µs
  await run([b], takes(5));
  const stored = (await readBucket(redis, b.key))!;
  assert.equal(stored.level, 0, 'emptied in one call');
  assert.ok(stored.t > 1.6e15 && stored.t < 1e16, 'µs since the epoch');
  await sleep(25);
  const reply = await run([b], takes(0));
  const expected = (reply.nowUs - stored.t) * 6000;
  assert.equal(reply.buckets[0]!.remaining, Math.floor(Math.min(5 * UNIT, expected) / UNIT));
  const after = await readBucket(redis, b.key);
  if (expected < 5 * UNIT) {
    assert.deepEqual(after, { level: expected, t: reply.nowUs }, 'refill is exact to the unit');
    assert.match((await redis.get(b.key))!, /^\d+ \d+$/, 'integers, no exponent');
  } else {
    assert.equal(after, null, 'full again: the key is gone');
  }
});

test('all or nothing: one short bucket refuses the call and nothing is taken anywhere', async () => {
  const req = spec('aon-req', 10, 60, 'requests');
  const tok = spec('aon-tok', 100, 60);
  assert.equal((await run([req, tok], takes(80))).allowed, true);
  const refused = await run([req, tok], takes(80));
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[0]!.waitMs, 0, 'the request bucket had room');
  assert.ok(refused.buckets[1]!.waitMs > 0, 'the token bucket was short');
  const look = await run([req, tok], takes(0, 0, 0));
  assert.equal(look.buckets[0]!.remaining, 9, 'the refused call took no request token');
  assert.equal(look.buckets[1]!.remaining, 20);
});

test('refunds go to token buckets before the take, are kept even when the take is refused, and stop at the burst', async () => {
  const req = spec('refund-req', 10, 1, 'requests');
  const tok = spec('refund', 100, 1);
  assert.equal((await run([req, tok], takes(100))).allowed, true);
  const refused = await run([req, tok], takes(90, 40));
  assert.equal(refused.allowed, false);
  assert.equal(refused.buckets[1]!.remaining, 40, 'the refund stayed');
  assert.equal(refused.buckets[0]!.remaining, 9, 'request buckets get no refund');
  const taken = await run([req, tok], takes(50, 30));
  assert.equal(taken.allowed, true);
  assert.equal(taken.buckets[1]!.remaining, 20);
  const capped = await run([tok], takes(0, 1_000));
  assert.equal(capped.buckets[0]!.remaining, 100);
});

test('keys expire when their bucket would be full; a full bucket leaves no key; garbage is a full bucket', async () => {
  const b = spec('ttl', 10, 600); // 10 tokens a second
  await run([b], takes(4));
  const pttl = await redis.pttl(b.key);
  assert.ok(pttl > 350 && pttl <= 400, `4 tokens at 10 a second: ${pttl} ms`);
  await run([b], takes(0, 4));
  assert.equal(await redis.exists(b.key), 0);
  await redis.set(b.key, 'not a bucket');
  const reply = await run([b], takes(1));
  assert.equal(reply.buckets[0]!.remaining, 9, 'an unreadable value counts as full and is replaced');
});

test('concurrent callers on separate connections take exactly the burst', async (ctx) => {
  const clients = Array.from({ length: 4 }, () => new Redis(url));
  ctx.after(() => {
      for (const c of clients) c.disconnect();
  });
  for (const c of clients) defineBucketScript(c);
  const b = spec('race', 50, 1, 'requests'); // one token a minute: nothing refills during the race
  const replies = await Promise.all(Array.from({ length: 400 }, (_, i) => takeBuckets(clients[i % 4]!, [b], takes(0))));
  assert.equal(replies.filter((r) => r[1] === 1).length, 50);
});

test('a batch takes for each call in order, exactly as one call each would, repeated buckets included', async () => {
  // Refill of one token a minute: the few µs between calls change no whole token.
  const trace = (tag: string) => {
    const a = { ...spec(`${tag}-a`, 4, 1), key: `${prefix}{${tag}}:a` };
    const b = { ...spec(`${tag}-b`, 10, 1), key: `${prefix}{${tag}}:b` };
    const r = { ...spec(`${tag}-r`, 3, 1, 'requests'), key: `${prefix}{${tag}}:r` };
    // Mixed sizes over shared buckets, refusals in the middle, a refund that makes a later take fit.
    return [
      { specs: [r, a], take: takes(2) },
      { specs: [r, a, b], take: takes(3) },
      { specs: [r, b], take: takes(6) },
      { specs: [r, a], take: takes(1) },
      { specs: [b], take: takes(0, 5, 0) },
      { specs: [r, b], take: takes(4) },
      { specs: [a], take: takes(2, 0, 0) },
    ];
  };
  const one: unknown[] = [];
  for (const c of trace('single')) one.push(summary(await takeBuckets(redis, c.specs, c.take), 1, c.specs.length));
  const calls = trace('batched');
  const reply = await takeBatch(redis, calls);
  const batched: unknown[] = [];
  let base = 1;
  for (const c of calls) {
    batched.push(summary(reply, base, c.specs.length));
    base += 1 + 3 * c.specs.length;
  }
  assert.equal(base, reply.length, 'the reply holds every call and nothing more');
  assert.deepEqual(batched, one);
  assert.ok(one.some((s) => !(s as { allowed: boolean }).allowed) && one.some((s) => (s as { allowed: boolean }).allowed), 'the trace admits and refuses');
});

/** What a call's part of a reply decided: admitted or not, and the whole tokens left in each bucket. */
function summary(reply: number[], base: number, buckets: number) {
  return { allowed: reply[base] === 1, remaining: Array.from({ length: buckets }, (_, i) => reply[base + 1 + 3 * i]) };
}
