import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppError } from '../../../../src/shared/errors.js';
import { ChatGLMTokenizer } from '../../../../src/tokenizer/tokenizer.js';
import { encodeReply, loadSimScript, MAX_SCRIPT_BYTES, parseScriptEntry } from '../../../../src/worker/engine/sim-script.js';
import { GOLDEN_TOKENIZER_DIR } from '../../../helpers/paths.js';

const tok = await ChatGLMTokenizer.fromFile(join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model'));

function withFile(content: string | Uint8Array, fn: (path: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sim-script-'));
  const path = join(dir, 'script.jsonl');
  writeFileSync(path, content);
  return fn(path).finally(() => rmSync(dir, { recursive: true, force: true }));
}

async function refusal(content: string | Uint8Array): Promise<string> {
  let message = '';
  await withFile(content, async (path) => {
    await assert.rejects(loadSimScript(path), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'INVALID_DATA');
      message = err.message.replace(path, 'FILE');
      return true;
    });
  });
  return message;
}

test('a script file: entries in order with their lines; a BOM, blank lines and CRLF are fine', async () => {
  const text = '\uFEFF{"match": "借款", "reply": "\\n按期归还。"}\r\n\r\n  \n{"match": "", "reply": "get_x\\n```python\\ntool_call()\\n```"}\n';
  await withFile(text, async (path) => {
    assert.deepEqual(await loadSimScript(path), [
      { match: '借款', reply: '\n按期归还。', line: 1 },
      { match: '', reply: 'get_x\n```python\ntool_call()\n```', line: 4 },
    ]);
  });
  await withFile('', async (path) => assert.deepEqual(await loadSimScript(path), []));
});

test('garbage script files stop with one line naming the file, the line and the field', async () => {
  const ok = '{"match": "a", "reply": "b"}\n';
  assert.equal(await refusal(`${ok}{"match": "a", "reply": }\n`), 'FILE:2: not JSON: ' + (await jsonError('{"match": "a", "reply": }')));
  assert.equal(await refusal(`${ok}${ok}[1, 2]\n`), 'FILE:3: a line must be a JSON object {"match": "...", "reply": "..."}');
  assert.equal(await refusal('"just a string"\n'), 'FILE:1: a line must be a JSON object {"match": "...", "reply": "..."}');
  assert.equal(await refusal('null\n'), 'FILE:1: a line must be a JSON object {"match": "...", "reply": "..."}');
  assert.match(await refusal(`${ok}{"match": "a"}\n`), /^FILE:2: reply: /);
  assert.match(await refusal('{"reply": "b"}\n'), /^FILE:1: match: /);
  assert.match(await refusal('{"match": 5, "reply": "b"}\n'), /^FILE:1: match: .*string/);
  assert.match(await refusal('{"match": "a", "reply": ["b"]}\n'), /^FILE:1: reply: .*string/);
  assert.equal(await refusal('{"match": "a", "reply": "b", "delay": 3}\n'), 'FILE:1: delay: unknown field (only match and reply)');
  assert.match(await refusal(Uint8Array.from([0xff, 0xfe, 0x00, 0x01, 0x80, 0x0a, 0x7b])), /^FILE:1: not JSON/);
  // Random bytes: refused (or, by chance, empty), never a crash or a silently skipped line.
  let seed = 7;
  const next = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 30; i++) {
    const junk = Uint8Array.from({ length: 1 + Math.floor(next() * 200) }, () => Math.floor(next() * 256));
    await withFile(junk, async (path) => {
      try {
        const entries = await loadSimScript(path);
        assert.deepEqual(entries, []);
      } catch (err) {
        assert.ok(err instanceof AppError && err.code === 'INVALID_DATA', String(err));
        assert.match(err.message, /:\d+: /);
      }
    });
  }
});

test('a script that is missing, a folder, or too large is refused before it is read', async () => {
  await assert.rejects(loadSimScript('/nonexistent/script.jsonl'), /\/nonexistent\/script\.jsonl: cannot be read \(ENOENT\)/);
  await assert.rejects(loadSimScript(tmpdir()), /: not a file$/);
  // A sparse file: as large as it says without the disk space.
  await withFile('', async (path) => {
    truncateSync(path, MAX_SCRIPT_BYTES + 1);
    await assert.rejects(loadSimScript(path), new RegExp(`${MAX_SCRIPT_BYTES + 1} bytes, more than the ${MAX_SCRIPT_BYTES}`));
  });
});

test('one line parsed on its own: the field at fault', () => {
  assert.deepEqual(parseScriptEntry({ match: 'a', reply: 'b' }, 9, 's'), { match: 'a', reply: 'b', line: 9 });
  assert.throws(() => parseScriptEntry({ match: 'a', reply: null }, 9, 's'), /s:9: reply: /);
});

test('reply text: the role tokens become their special ids, other text (sop, [gMASK], a lone <|) stays text', () => {
  const s = tok.specialTokens;
  const ids = encodeReply(tok, 'f\nx<|assistant|>g\ny<|observation|>');
  assert.deepEqual(ids, [...tok.encode('f\nx'), s['<|assistant|>'], ...tok.encode('g\ny'), s['<|observation|>']]);
  assert.deepEqual(encodeReply(tok, '<|user|><|system|>'), [s['<|user|>'], s['<|system|>']]);
  const plain = 'sop [gMASK] eop <| assistant |> <|assistant';
  assert.deepEqual(encodeReply(tok, plain), tok.encode(plain));
  assert.equal(tok.decode(encodeReply(tok, plain)), plain);
  assert.deepEqual(encodeReply(tok, ''), []);
});

async function jsonError(text: string): Promise<string> {
  try {
    JSON.parse(text);
  } catch (err) {
    return (err as Error).message;
  }
  return '';
}
