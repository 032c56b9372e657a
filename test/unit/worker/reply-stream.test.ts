import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ChatGLMTokenizer } from '../../../src/tokenizer/tokenizer.js';
import { ReplyStream } from '../../../src/worker/reply-stream.js';
import { GOLDEN_TOKENIZER_DIR } from '../../helpers/paths.js';

const tok = await ChatGLMTokenizer.fromFile(join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model'));

function play(text: string, options: { chat: boolean; stop: string[] }): { out: string; stopped: boolean; perToken: string[] } {
  const ids = tok.encode(text);
  const reply = new ReplyStream(tok, options);
  const perToken: string[] = [];
  let stopped = false;
  for (const id of ids) {
    const r = reply.push(id);
    perToken.push(r.text);
    if (r.stopped) {
      stopped = true;
      break;
    }
  }
  if (!stopped) perToken.push(reply.end());
  return { out: perToken.join(''), stopped, perToken };
}

test('a stop string spread over several tokens ends the reply before it', () => {
  const r = play('劳动合同到期后公司不续签，需要支付经济补偿吗', { chat: false, stop: ['公司不续签'] });
  assert.equal(r.out, '劳动合同到期后');
  assert.ok(r.stopped);
});

test('text that only looks like the start of a stop string is held, then released', () => {
  const r = play('劳动合同到期后，劳动仲裁', { chat: false, stop: ['劳动合同法'] });
  assert.equal(r.out, '劳动合同到期后，劳动仲裁');
  assert.ok(!r.stopped);
  // ▁, 劳动合同 (held: it could begin 劳动合同法), 到 (released with it)
  assert.deepEqual(r.perToken.slice(0, 3), ['', '', '劳动合同到']);
});

test('the earliest of several stop strings wins; an empty stop list changes nothing', () => {
  assert.equal(play('abc 123 abc', { chat: false, stop: ['3', 'b'] }).out, 'a');
  assert.equal(play('abc 123', { chat: false, stop: [] }).out, 'abc 123');
});

test('chat replies lose the metadata line and surrounding white space, then stop strings apply', () => {
  const r = play('\n  根据劳动合同法第四十六条  ', { chat: true, stop: [] });
  assert.equal(r.out, '根据劳动合同法第四十六条');
  assert.equal(play('\n根据劳动合同法第四十六条', { chat: true, stop: ['第四'] }).out, '根据劳动合同法');
});
