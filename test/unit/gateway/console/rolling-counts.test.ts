import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RollingCounts } from '../../../../src/gateway/console/rolling-counts.js';

test('counts by key over the last window, each count leaving it with its slot', () => {
  let now = 1_000_000;
  const c = new RollingCounts(60_000, 1000, () => now);
  c.add('pro');
  c.add('pro');
  c.add('free', 3);
  assert.deepEqual({ ...c.counts() }, { pro: 2, free: 3 });
  now += 30_000;
  c.add('pro');
  assert.deepEqual({ ...c.counts() }, { pro: 3, free: 3 });
  now += 29_999;
  assert.deepEqual({ ...c.counts() }, { pro: 3, free: 3 }, 'still inside the minute');
  now += 1;
  assert.deepEqual({ ...c.counts() }, { pro: 1 }, 'the first second left the window');
  now += 30_000;
  assert.deepEqual({ ...c.counts() }, {});
});

test('a slot reused after the ring wraps starts from zero, also after a long silence', () => {
  let now = 0;
  const c = new RollingCounts(3000, 1000, () => now);
  c.add('a');
  now = 3000; // the same ring slot as time 0
  c.add('a');
  assert.deepEqual({ ...c.counts() }, { a: 1 });
  now = 3_600_000 + 500;
  assert.deepEqual({ ...c.counts() }, {}, 'nothing left after an hour');
  c.add('b');
  now += 1000;
  c.add('b');
  assert.deepEqual({ ...c.counts() }, { b: 2 });
});

test('a clock that goes back does not count slots from the future', () => {
  let now = 10_000;
  const c = new RollingCounts(60_000, 1000, () => now);
  c.add('x');
  now = 5_000;
  assert.deepEqual({ ...c.counts() }, {});
  c.add('y');
  now = 10_000;
  assert.deepEqual({ ...c.counts() }, { x: 1, y: 1 });
});

test('many adds in one slot and keys of any text stay exact', () => {
  const c = new RollingCounts(60_000, 1000, () => 42);
  for (let i = 0; i < 10_000; i++) c.add(i % 2 ? 'http://127.0.0.1:1' : '<img src=x>');
  c.add('__proto__');
  c.add('constructor');
  const counts = c.counts();
  assert.equal(counts['http://127.0.0.1:1'], 5000);
  assert.equal(counts['<img src=x>'], 5000);
  assert.equal(Object.getOwnPropertyDescriptor(counts, '__proto__')?.value, 1);
  assert.equal(counts.constructor, 1);
});
