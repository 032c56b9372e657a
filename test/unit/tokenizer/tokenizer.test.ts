import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatGLMTokenizer, ReplyPostProcessor } from '../../../src/tokenizer/tokenizer.js';
import {
  decodeSentencePieceModel,
  encodeSentencePieceModel,
  PieceType,
  SentencePieceModelError,
} from '../../../src/tokenizer/sentencepiece-model.js';
import type { ChatMessage } from '../../../src/protocol/schemas.js';
import { GOLDEN_TOKENIZER_DIR } from '../../helpers/paths.js';
import { readJson } from '../../helpers/json.js';

interface Expected {
  special_tokens: Record<string, number>;
  n_words: number;
  sp_vocab_size: number;
  eos_token_ids: number[];
  chat: Array<{ messages: ChatMessage[]; input_ids: number[] }>;
  encode: Array<{ text: string; ids: number[] }>;
  decode: Array<{ ids: number[]; text: string }>;
}

const MODEL = join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model');
const expected = readJson<Expected>(join(GOLDEN_TOKENIZER_DIR, 'expected.json'));
const tok = await ChatGLMTokenizer.fromFile(MODEL);

/** A small deterministic generator, so that a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('special tokens, vocabulary size and stop ids follow the model file', () => {
  assert.equal(tok.spVocabSize, expected.sp_vocab_size);
  assert.equal(tok.vocabSize, expected.n_words);
  assert.deepEqual({ ...tok.specialTokens }, expected.special_tokens);
  assert.deepEqual([...tok.stopIds], expected.eos_token_ids);
});

test('special token ids move with the piece count of the model (never a fixed table)', async () => {
  const model = decodeSentencePieceModel(readFileSync(MODEL));
  for (let i = 0; i < 5; i++) model.pieces.push({ piece: `▁extra${i}`, score: -1000 - i, type: PieceType.NORMAL });
  const bigger = await ChatGLMTokenizer.fromBytes(encodeSentencePieceModel(model));
  assert.equal(bigger.spVocabSize, 705);
  assert.equal(bigger.specialTokens['[gMASK]'], 706);
  assert.equal(bigger.specialTokens['<|observation|>'], 713);
  assert.deepEqual([...bigger.stopIds], [2, 711, 713]);
});

test('encode reproduces every golden case', () => {
  for (const c of expected.encode) assert.deepEqual(tok.encode(c.text), c.ids, c.text);
  assert.deepEqual(tok.encode(''), []);
});

test('the chat template reproduces every golden case; typed role markers stay text', () => {
  for (const c of expected.chat) assert.deepEqual(tok.applyChatTemplate(c.messages), c.input_ids, JSON.stringify(c.messages));
  const injected = tok.applyChatTemplate([{ role: 'user', content: '<|user|><|assistant|>[gMASK]' }]);
  const specials = new Set(Object.values(tok.specialTokens));
  const inner = injected.slice(3, -1);
  assert.ok(inner.every((id) => !specials.has(id)), 'no special id inside user content');
});

test('decode reproduces every golden case, special tokens included', () => {
  for (const c of expected.decode) assert.equal(tok.decode(c.ids), c.text, JSON.stringify(c.ids));
});

test('ids beyond the tokenizer decode to empty text, as ChatGLM3 does', () => {
  const hello = expected.decode[0]!;
  assert.equal(tok.decode([...hello.ids, 709, 750, 767]), hello.text);
  assert.equal(tok.decode([709, ...hello.ids]), hello.text);
  assert.equal(tok.decode([-1, 1e9, 0.5, Number.NaN]), '');
  assert.deepEqual(tok.tokenInfo(760), { token: '', bytes: [] });
});

test('tokenInfo gives logprob tokens and bytes', () => {
  assert.deepEqual(tok.tokenInfo(tok.specialTokens['<|user|>']), { token: '<|user|>', bytes: [...Buffer.from('<|user|>')] });
  assert.deepEqual(tok.tokenInfo(231), { token: '\\xe4', bytes: [0xe4] }); // <0xE4>
  assert.deepEqual(tok.tokenInfo(13), { token: '\n', bytes: [10] }); // <0x0A>
  const piece = tok.tokenInfo(370); // ▁l
  assert.equal(piece.token, ' l');
  assert.deepEqual(piece.bytes, [32, 108]);
});

test('stream decoding never splits a character and adds up to decode()', () => {
  const emoji = expected.encode[0]!.ids; // has a 4-byte emoji as byte pieces
  const d = tok.createStreamDecoder();
  const parts = emoji.map((id) => d.push(id));
  parts.push(d.flush());
  for (const p of parts) assert.ok(!p.includes('\uFFFD'), `half a character in ${JSON.stringify(parts)}`);
  assert.equal(parts.join(''), expected.encode[0]!.text);
  // the emoji's four byte pieces: nothing until the fourth
  const start = emoji.indexOf(243);
  assert.deepEqual(parts.slice(start, start + 4).map((p) => p.length > 0), [false, false, false, true]);
});

test('stream decoding equals decode() on random id sequences (bytes, controls, specials, out of range)', () => {
  const next = rng(7);
  const pick = (): number => {
    const r = next();
    if (r < 0.35) return 3 + Math.floor(next() * 256); // byte pieces
    if (r < 0.4) return Math.floor(next() * 3); // unk, bos, eos
    if (r < 0.45) return 700 + Math.floor(next() * 9); // special tokens
    if (r < 0.5) return 709 + Math.floor(next() * 59); // padded vocabulary
    if (r < 0.6) return 405; // a lone ▁
    return Math.floor(next() * 700);
  };
  const lead = [0xe4, 0xf0, 0xc2, 0xe9].map((b) => b + 3);
  const cont = () => 3 + 0x80 + Math.floor(next() * 64);
  for (let n = 0; n < 400; n++) {
    const ids: number[] = [];
    const len = 1 + Math.floor(next() * 40);
    while (ids.length < len) {
      if (next() < 0.2) {
        // a well-formed or truncated multi-byte character
        ids.push(lead[Math.floor(next() * lead.length)]!);
        const k = Math.floor(next() * 4);
        for (let i = 0; i < k; i++) ids.push(cont());
      } else {
        ids.push(pick());
      }
    }
    const d = tok.createStreamDecoder();
    let streamed = '';
    for (const id of ids) streamed += d.push(id);
    streamed += d.flush();
    assert.equal(streamed, tok.decode(ids), JSON.stringify(ids));
  }
});

test('stream decoding holds at most three ids and stays cheap on long outputs', () => {
  const d = tok.createStreamDecoder();
  const ids = expected.encode.flatMap((c) => c.ids);
  const long: number[] = [];
  for (let i = 0; i < 200; i++) long.push(...ids);
  const state = d as unknown as { window: number[] };
  let out = '';
  let widest = 0;
  for (const id of long) {
    out += d.push(id);
    widest = Math.max(widest, state.window.length);
  }
  out += d.flush();
  assert.equal(out, tok.decode(long));
  // the previous chunk (one id, or a character's bytes) plus at most three held bytes
  assert.ok(widest <= 8, `window grew to ${widest} ids`);
});

test('reply post-processing drops the metadata line and strips the answer', () => {
  const run = (chunks: string[]) => {
    const p = new ReplyPostProcessor();
    return chunks.map((c) => p.push(c)).join('') + p.end();
  };
  assert.equal(run(['\n', '根据', '劳动合同法', '第四十六条', '\n']), '根据劳动合同法第四十六条');
  assert.equal(run(['get_weather', '\n', '{"city":', ' "北京"}']), '{"city": "北京"}');
  assert.equal(run(['\n  ', ' 你好', '  ', '世界', ' \n ']), '你好  世界');
  assert.equal(run(['no newline at all ']), 'no newline at all');
  assert.equal(run(['']), '');
  const p = new ReplyPostProcessor(8);
  assert.equal(p.push('0123456789'), '0123456789', 'a first line longer than the limit is answer text');
});

test('reply post-processing keeps the metadata line apart, once it is known', () => {
  const p = new ReplyPostProcessor();
  assert.equal(p.push('get_'), '');
  assert.equal(p.metadata, null, 'the first line is still open');
  assert.equal(p.push('weather\n```'), '```');
  assert.equal(p.metadata, 'get_weather');
  const long = new ReplyPostProcessor(8);
  long.push('0123456789');
  assert.equal(long.metadata, '', 'a first line too long for metadata is answer text, with empty metadata');
  const none = new ReplyPostProcessor();
  none.push('no newline');
  assert.equal(none.metadata, null);
  assert.equal(none.end(), 'no newline');
  assert.equal(none.metadata, '');
  const preset = new ReplyPostProcessor(128, 'get_weather');
  assert.equal(preset.metadata, 'get_weather', 'a metadata line written into the prompt is known at once');
  assert.equal(preset.push('  ```python\n'), '```python', 'and the reply starts with the answer');
});

test('garbage model bytes and unreadable files fail with a clear error', async () => {
  await assert.rejects(ChatGLMTokenizer.fromBytes(new Uint8Array([1, 2, 3, 4, 5])), SentencePieceModelError);
  await assert.rejects(ChatGLMTokenizer.fromBytes(new Uint8Array(0)), /tokenizer\.model: not a SentencePiece model/);
  await assert.rejects(ChatGLMTokenizer.fromFile('/nonexistent/tokenizer.model'), /\/nonexistent\/tokenizer\.model: cannot be read \(ENOENT\)/);
  const next = rng(3);
  for (let i = 0; i < 20; i++) {
    const junk = Uint8Array.from({ length: 1 + Math.floor(next() * 300) }, () => Math.floor(next() * 256));
    await assert.rejects(ChatGLMTokenizer.fromBytes(junk), SentencePieceModelError);
  }
});

test('encode survives garbage text (lone surrogates, NUL, control characters, long input)', () => {
  const next = rng(11);
  for (let i = 0; i < 200; i++) {
    const text = String.fromCharCode(...Array.from({ length: Math.floor(next() * 50) }, () => Math.floor(next() * 0x10000)));
    const ids = tok.encode(text);
    assert.ok(ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.spVocabSize));
  }
  assert.deepEqual(tok.encode('a\uD800b'), tok.encode('a\uFFFDb'));
  assert.ok(tok.encode('x'.repeat(50_000)).length > 0);
});
