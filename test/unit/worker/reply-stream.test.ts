import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ChatGLMTokenizer } from '../../../src/tokenizer/tokenizer.js';
import { ReplyStream } from '../../../src/worker/reply-stream.js';
import { encodeReply } from '../../../src/worker/engine/sim-script.js';
import { readReply } from '../../../src/tokenizer/tool-call.js';
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
  if (!stopped) perToken.push(reply.end().text);
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

interface Played {
  /** segment events and text per segment, in stream order */
  log: Array<{ segment: number; metadata: string } | { text: string; segment: number | undefined }>;
  texts: string[];
  metadata: string[];
  stopped: boolean;
}

/** Runs ids through a ReplyStream as the scheduler does, stopping on a stop id or a stop string. */
function playIds(ids: number[], options: { chat: boolean; stop?: string[]; answerMetadata?: string }): Played {
  const reply = new ReplyStream(tok, { stop: [], ...options });
  const played: Played = { log: [], texts: [], metadata: [], stopped: false };
  const take = (step: ReturnType<ReplyStream['push']>) => {
    for (const s of step.segments) {
      played.log.push({ segment: s.index, metadata: s.metadata });
      assert.equal(s.index, played.metadata.length, 'segments are reported once each, in order');
      played.metadata.push(s.metadata);
      played.texts.push('');
    }
    if (step.text !== '') {
      played.log.push({ text: step.text, segment: step.segment });
      if (step.segment !== undefined) {
        assert.ok(step.segment < played.metadata.length, 'a segment is reported before its text');
        played.texts[step.segment] += step.text;
      }
    }
  };
  for (const id of ids) {
    if (tok.stopIds.includes(id)) break;
    const step = reply.push(id);
    take(step);
    if (step.stopped) {
      played.stopped = true;
      break;
    }
  }
  take(reply.end());
  return played;
}

const call = (name: string, code: string) => `${name}\n\`\`\`python\n${code}\n\`\`\``;

test('a plain chat reply is one segment with empty metadata, reported before its text', () => {
  const r = playIds(encodeReply(tok, '\n  根据劳动合同法第四十六条  '), { chat: true });
  assert.deepEqual(r.metadata, ['']);
  assert.deepEqual(r.texts, ['根据劳动合同法第四十六条']);
  assert.deepEqual(r.log[0], { segment: 0, metadata: '' });
});

test('a reply of two calls is two segments, split on the <|assistant|> id, each with its metadata', () => {
  const text = `${call('get_weather', "tool_call(city='北京')")}<|assistant|>${call('get_time', "tool_call(zone='Asia/Shanghai')")}<|observation|>ignored`;
  const r = playIds(encodeReply(tok, text), { chat: true });
  assert.deepEqual(r.metadata, ['get_weather', 'get_time']);
  assert.deepEqual(r.texts, ["```python\ntool_call(city='北京')\n```", "```python\ntool_call(zone='Asia/Shanghai')\n```"]);
  const read = readReply(r.metadata.map((metadata, i) => ({ metadata, content: r.texts[i]! })));
  assert.deepEqual(read.toolCalls, [
    { name: 'get_weather', arguments: { city: '北京' } },
    { name: 'get_time', arguments: { zone: 'Asia/Shanghai' } },
  ]);
});

test('segment edge cases: no newline before <|assistant|>, an empty segment, a long first line, a preset metadata line', () => {
  const r = playIds(encodeReply(tok, '没有换行<|assistant|><|assistant|>\n最后'), { chat: true });
  assert.deepEqual(r.metadata, ['', '', '']);
  assert.deepEqual(r.texts, ['没有换行', '', '最后']);
  const long = 'x'.repeat(200);
  const l = playIds(encodeReply(tok, `${long}\nmore`), { chat: true });
  assert.deepEqual(l.metadata, ['']);
  assert.equal(l.texts[0], `${long}\nmore`);
  const p = playIds(encodeReply(tok, "```python\ntool_call(city='北京')\n```"), { chat: true, answerMetadata: 'get_weather' });
  assert.deepEqual(p.metadata, ['get_weather']);
  assert.deepEqual(p.log[0], { segment: 0, metadata: 'get_weather' }, 'a preset metadata line is reported with the first step');
  const empty = playIds([], { chat: true });
  assert.deepEqual(empty.metadata, [''], 'an answer with no token still has its segment');
});

test('stop strings are matched within a segment; a stop in one segment ends the reply without starting the next', () => {
  const r = playIds(encodeReply(tok, '\n根据劳动合同法第四十六条<|assistant|>\n下一段'), { chat: true, stop: ['第四'] });
  assert.ok(r.stopped);
  assert.deepEqual(r.metadata, ['']);
  assert.deepEqual(r.texts, ['根据劳动合同法']);
  // A stop string's start held at the end of a segment is that segment's text, not joined to the next.
  const h = playIds(encodeReply(tok, '\n第一段劳动<|assistant|>\n合同'), { chat: true, stop: ['劳动合同'] });
  assert.ok(!h.stopped);
  assert.deepEqual(h.texts, ['第一段劳动', '合同']);
});

test('prompt (not chat) replies have no segments, and <|assistant|> stays text', () => {
  const r = playIds(encodeReply(tok, 'a<|assistant|>b'), { chat: false });
  assert.deepEqual(r.metadata, []);
  assert.equal(r.log.map((e) => ('text' in e ? e.text : '')).join(''), 'a<|assistant|>b');
  assert.ok(r.log.every((e) => 'text' in e && e.segment === undefined));
});
