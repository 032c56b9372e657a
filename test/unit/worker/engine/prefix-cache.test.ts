/** The prefix cache's index: chain keys, longest-prefix lookups, LRU eviction within the budget. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PrefixCache } from '../../../../src/worker/engine/prefix-cache.js';

const tokens = (n: number, salt = 0) => Array.from({ length: n }, (_, i) => 10 + ((i * 7 + salt) % 97));
const block = () => ({ data: 'kv', bytes: 100 });

test('a key names one exact prefix: same tokens and adapter, same key; any earlier difference changes every later key', () => {
  const c = new PrefixCache<string>(10_000, 4);
  const a = c.keys(null, tokens(12));
  assert.equal(a.length, 3);
  assert.deepEqual(c.keys(null, tokens(12)), a);
  assert.deepEqual(c.keys(null, tokens(14)), a, 'a partial last block has no key');
  assert.deepEqual(c.keys(null, tokens(12), 2), a.slice(0, 2));
  const changed = tokens(12);
  changed[1] = 5;
  const b = c.keys(null, changed);
  assert.ok(b.every((k, i) => k !== a[i]));
  const later = tokens(12);
  later[9] = 5;
  assert.deepEqual(c.keys(null, later).slice(0, 2), a.slice(0, 2));
  assert.notEqual(c.keys(null, later)[2], a[2]);
  assert.ok(c.keys('legal', tokens(12)).every((k, i) => k !== a[i]), 'the adapter is part of every key');
});

test('lookup returns the longest cached prefix, and checks the token ids of what it returns', () => {
  const c = new PrefixCache<string>(10_000, 4);
  const t = tokens(16);
  c.insert(c.keys(null, t, 2), t, block);
  assert.equal(c.size, 2);
  assert.equal(c.lookup(c.keys(null, t), t).length, 2);
  assert.equal(c.lookup(c.keys(null, tokens(16, 3)), tokens(16, 3)).length, 0);
  const keys = c.keys(null, t);
  const other = [...t];
  other[0] = 99;
  assert.equal(c.lookup(keys, other).length, 0, 'a key that does not go with these tokens finds nothing');
  assert.equal(c.lookup([], t).length, 0);
});

test('eviction is least recently used within the budget, and takes the ends of chains first', () => {
  const c = new PrefixCache<string>(400, 4);
  const a = tokens(12, 1);
  const b = tokens(12, 2);
  c.insert(c.keys(null, a), a, block); // 3 blocks, 300 bytes
  c.insert(c.keys(null, b, 1), b, block); // 400
  assert.equal(c.bytes, 400);
  c.lookup(c.keys(null, a, 1), a); // a's first block is now the most recent
  c.insert(c.keys(null, b, 2), b, block); // 500 > 400: one block goes
  assert.equal(c.bytes, 400);
  assert.equal(c.evictions, 1);
  assert.equal(c.lookup(c.keys(null, a), a).length, 2, "a's last block went, its first two stay");
  assert.equal(c.lookup(c.keys(null, b), b).length, 2);
});

test('a block larger than the whole budget is not kept; a zero block size is refused', () => {
  const c = new PrefixCache<string>(50, 4);
  c.insert(c.keys(null, tokens(8)), tokens(8), block);
  assert.equal(c.size, 0);
  assert.equal(c.bytes, 0);
  assert.throws(() => new PrefixCache(10, 0), /blockTokens/);
});
