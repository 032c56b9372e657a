import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeySpace, keyPart } from '../../../../src/gateway/limiter/keys.js';

/** What a Redis Cluster client hashes: the first {...} with something inside, else the whole key. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

const HOSTILE = [
  'x'.repeat(100_000),
  'evil}{other',
  '{t:victim}',
  'a\r\nDEL *\r\n',
  '\u0000\u0001\u001b[31m',
  '~AAAA',
  'ümlaut-中文',
  ' ',
  't:acme}:requests',
];

test('plain subjects are kept as they are', () => {
  for (const s of ['t:acme', 'ip:10.0.0.7', 'ip:2001:db8::', 't:a.b_c-d@e']) assert.equal(keyPart(s), s);
});

test('hostile subjects never reach a key as written', () => {
  for (const s of HOSTILE) {
    const part = keyPart(s);
    assert.match(part, /^~[A-Za-z0-9_-]{43}$/, JSON.stringify(s.slice(0, 40)));
    const keys = new KeySpace('chat:', 0).keys(`t:${s}`);
    for (const key of Object.values(keys)) {
      assert.ok(key.length < 100, 'bounded length');
      assert.doesNotMatch(key, /[\u0000-\u001f\u007f\s]/, 'no control characters or spaces');
      assert.equal(key.split('{').length, 2, 'exactly one hash tag');
    }
  }
});

test('escaping is injective: distinct subjects, distinct parts', () => {
  const parts = new Set(HOSTILE.map(keyPart));
  assert.equal(parts.size, HOSTILE.length);
  // A subject that looks like an escaped one is itself escaped, so it cannot collide with one.
  const escaped = keyPart('{x}');
  assert.notEqual(keyPart(escaped), escaped);
});

test("a tenant's keys share its hash tag; the global keys have their own", () => {
  const keys = new KeySpace('chat:', 0).keys('t:acme');
  assert.equal(keys.requests, 'chat:ratelimit:{t:acme}:requests');
  assert.equal(keys.tokens, 'chat:ratelimit:{t:acme}:tokens');
  assert.equal(hashTag(keys.requests), hashTag(keys.tokens));
  assert.equal(keys.globalRequests, 'chat:ratelimit:{global}:requests');
});

test('sliced layout: a tenant and its slice of the global buckets share one tag', () => {
  const space = new KeySpace('chat:', 16);
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const keys = space.keys(`t:tenant-${i}`);
    const tag = hashTag(keys.requests);
    assert.match(tag, /^s([0-9]|1[0-5])$/);
    for (const k of Object.values(keys)) assert.equal(hashTag(k), tag);
    assert.notEqual(keys.requests, space.keys(`t:tenant-${i + 1}`).requests);
    seen.add(tag);
  }
  assert.equal(seen.size, 16, 'subjects spread over every slice');
});
