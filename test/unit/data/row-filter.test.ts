import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { duplicateKey, FingerprintSet, RowFilter } from '../../../src/data/row-filter.js';

test('the fingerprint set keeps every distinct key through growth and refuses repeats', () => {
  const set = new FingerprintSet();
  const keys = Array.from({ length: 20_000 }, (_, i) => createHash('sha1').update(String(i)).digest());
  for (const k of keys) assert.equal(set.add(k), true);
  assert.equal(set.size, 20_000);
  for (const k of keys) assert.equal(set.add(k), false);
  assert.equal(set.size, 20_000);
  // A fingerprint of all zeros is a key like any other, not an empty slot.
  const zero = Buffer.alloc(20);
  assert.equal(set.add(zero), true);
  assert.equal(set.add(zero), false);
  // Keys are compared by their first 8 bytes only.
  const a = Buffer.from('0123456789abcdefXXXX');
  const b = Buffer.from('0123456789abcdefYYYY');
  assert.equal(set.add(a), true);
  assert.equal(set.add(b), false);
});

test('duplicates are the same text up to whitespace runs; the filter counts each reason', () => {
  assert.deepEqual(duplicateKey('劳动  合同\n', '答复'), duplicateKey('劳动 合同', ' 答复 '));
  assert.notDeepEqual(duplicateKey('劳动合同', '答复'), duplicateKey('劳动', '合同答复'));
  const f = new RowFilter(true);
  const row = (reply: string, isBest: boolean | null, title = '标题') => ({ line: 2, title, question: '', reply, isBest });
  const key = (r: ReturnType<typeof row>) => duplicateKey(r.title, r.reply);
  const rows = [row('答', true), row('', true), row('答', false), row('答', true), row('另一个', true), row('答', true, '')];
  assert.deepEqual(rows.map((r) => f.check(r, key(r))), [null, 'empty_reply', 'not_best', 'duplicate', null, 'empty_prompt']);
  f.onSkip({ line: 9, reason: 'QUOTE', message: 'x' });
  assert.deepEqual(f.dropped, { empty_reply: 1, not_best: 1, duplicate: 1, empty_prompt: 1, malformed_quote: 1 });
  assert.equal(f.rowsRead, 7);
});
