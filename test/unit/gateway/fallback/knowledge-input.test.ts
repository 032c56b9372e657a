import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gbkEncode } from '../../../helpers/gbk.js';
import { AppError } from '../../../../src/shared/errors.js';
import { csvKnowledge, entryView, KNOWLEDGE_LIMITS, KnowledgeBodySchema, toKnowledgeEntries } from '../../../../src/gateway/fallback/knowledge-input.js';

function issues(body: unknown): { path: string; message: string }[] {
  const parsed = KnowledgeBodySchema.safeParse(body);
  return parsed.success ? [] : parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
}

const ok = { question: '宠物狗咬伤路人谁负责', answer: '饲养人或者管理人应当承担侵权责任。' };

test('entries within the bounds pass, trimmed; HTML and line breaks are text', () => {
  const parsed = KnowledgeBodySchema.parse({
    entries: [
      { ...ok, question: `  ${ok.question}\n` },
      { id: 'law:civil-1245', question: '<script>alert(1)</script>能起诉吗', detail: '第一行\n第二行\t制表', answer: '<b>可以</b> &amp; "引号"', source: '《民法典》第1245条' },
    ],
  });
  assert.equal(parsed.entries[0]!.question, ok.question);
  const [plain, html] = toKnowledgeEntries(parsed.entries);
  assert.match(plain!.id, /^lz-[0-9a-f]{12}$/, 'an entry without an id gets the digest id build-kb gives');
  assert.deepEqual(html, {
    id: 'law:civil-1245',
    title: '<script>alert(1)</script>能起诉吗',
    question: '第一行\n第二行\t制表',
    reply: '<b>可以</b> &amp; "引号"',
    source: '《民法典》第1245条',
  });
  assert.deepEqual(entryView(html!), { id: 'law:civil-1245', question: html!.title, detail: html!.question, answer: html!.reply, source: html!.source });
  assert.deepEqual(toKnowledgeEntries([ok]), toKnowledgeEntries([{ ...ok }]), 'the same text gives the same id');
});

test('bad and hostile entries are refused with the field and the entry named', () => {
  const cases: Array<[unknown, string, RegExp]> = [
    [{}, 'entries', /expected array/],
    [{ entries: [] }, 'entries', /at least one entry/],
    [{ entries: [ok], extra: 1 }, '', /Unrecognized key/],
    [{ entries: [ok, { answer: 'x' }] }, 'entries.1.question', /expected string/],
    [{ entries: [ok, { ...ok, answer: '   ' }] }, 'entries.1.answer', /must not be empty/],
    [{ entries: [{ ...ok, answer: 42 }] }, 'entries.0.answer', /expected string/],
    [{ entries: [{ ...ok, reply: 'x' }] }, 'entries.0', /Unrecognized key/],
    [{ entries: [ok, ok, { ...ok, answer: '好'.repeat(1_000_000) }] }, 'entries.2.answer', /at most 20000 characters/],
    [{ entries: [{ ...ok, question: '问'.repeat(1001) }] }, 'entries.0.question', /at most 1000/],
    [{ entries: [{ ...ok, detail: '细'.repeat(5001) }] }, 'entries.0.detail', /at most 5000/],
    [{ entries: [{ ...ok, source: 's'.repeat(1001) }] }, 'entries.0.source', /at most 1000/],
    [{ entries: [{ ...ok, answer: '可以\u0000起诉' }] }, 'entries.0.answer', /control characters/],
    [{ entries: [{ ...ok, question: '\u001b[31m红色' }] }, 'entries.0.question', /control characters/],
    [{ entries: [{ ...ok, detail: 'DEL\u007f' }] }, 'entries.0.detail', /control characters/],
    [{ entries: [{ ...ok, answer: 'C1\u0085' }] }, 'entries.0.answer', /control characters/],
    [{ entries: [{ ...ok, answer: '半个\ud800字' }] }, 'entries.0.answer', /surrogate/],
    [{ entries: [{ ...ok, id: '' }] }, 'entries.0.id', /letters, digits/],
    [{ entries: [{ ...ok, id: '../../etc' }] }, 'entries.0.id', /letters, digits/],
    [{ entries: [{ ...ok, id: 'a\r\nx-injected: 1' }] }, 'entries.0.id', /letters, digits/],
    [{ entries: [{ ...ok, id: 'x'.repeat(129) }] }, 'entries.0.id', /letters, digits/],
    [{ entries: [{ ...ok, id: '中文' }] }, 'entries.0.id', /letters, digits/],
    [{ entries: Array.from({ length: 10_000 }, (_, i) => ({ question: `问题${i}`, answer: '答' })) }, 'entries', /at most 1000 entries/],
  ];
  for (const [body, path, message] of cases) {
    const found = issues(body);
    assert.ok(found.length > 0, `refused: ${JSON.stringify(body).slice(0, 80)}`);
    assert.equal(found[0]!.path, path, JSON.stringify(body).slice(0, 80));
    assert.match(found[0]!.message, message, JSON.stringify(body).slice(0, 80));
  }
  assert.equal(KNOWLEDGE_LIMITS.entriesPerRequest, 1000);
  // Emoji and other astral characters are text.
  assert.deepEqual(issues({ entries: [{ ...ok, answer: '👨‍⚖️ 法官 😀' }] }), []);
});

test('an id given to two different entries is refused, naming both; identical entries collapse', () => {
  const a = { id: 'dup-1', question: '问一', answer: '答一' };
  assert.throws(
    () => toKnowledgeEntries([ok, a, { ...a, answer: '答二' }]),
    (err: unknown) => err instanceof AppError && err.param === 'entries.2.id' && /already used by entries\.1/.test(err.message),
  );
  assert.equal(toKnowledgeEntries([a, { ...a }, ok, { ...ok }]).length, 2);
  // A generated id that an explicit one takes is a repeat too.
  const generated = toKnowledgeEntries([ok])[0]!.id;
  assert.throws(() => toKnowledgeEntries([ok, { id: generated, question: '别的', answer: '别的' }]), /entries\.1\.id/);
});

test('a lawzhidao CSV body becomes entry inputs with their lines; GBK and CRLF are read', async () => {
  const csv = 'title,question,reply,is_best\r\n高空抛物砸坏车,"楼上扔东西，\r\n砸坏了车",可以起诉,1\r\n,只有问题,也可以,0\r\n';
  const { body, lines } = await csvKnowledge(Buffer.from(csv));
  assert.deepEqual(body.entries, [
    { question: '高空抛物砸坏车', detail: '楼上扔东西，\n砸坏了车', answer: '可以起诉' },
    { question: '只有问题', answer: '也可以' },
  ]);
  assert.deepEqual(lines, [2, 4]);
  const gbk = await csvKnowledge(gbkEncode('title,reply\n邻居噪音扰民,可以报警\n'));
  assert.deepEqual(gbk.body.entries, [{ question: '邻居噪音扰民', answer: '可以报警' }]);
  // Checked by the same schema afterwards: an empty reply is named with its entry.
  const empty = await csvKnowledge(Buffer.from('title,reply\n问题,\n'));
  assert.deepEqual(issues(empty.body)[0]?.path, 'entries.0.answer');
});

test('garbage CSV bodies are refused whole with the line or part at fault', async () => {
  const cases: Array<[Uint8Array, string, RegExp]> = [
    [Buffer.from(''), 'header', /empty/],
    [Buffer.from('\n\n'), 'header', /empty/],
    [Buffer.from('question,answer\nq,a\n'), 'header', /lacks title, reply/],
    [Buffer.from('title,reply\n'), 'body', /no rows/],
    [Buffer.from('title,reply\na,b\nc,d,e,f\ng,h\n'), 'line 3', /CSV line 3/],
    [Buffer.from('title,reply,is_best\na,b,maybe\n'), 'line 2', /is_best/],
    [Buffer.from([0x74, 0x69, 0x74, 0x6c, 0x65, 0x2c, 0x72, 0x65, 0x70, 0x6c, 0x79, 0x0a, 0x61, 0x2c, 0xc3, 0x28, 0x0a]), 'line 2', /not valid/],
    [Buffer.from([0xff, 0xfe, 0x74, 0x00]), 'encoding', /UTF-16/],
    [Buffer.from('title,reply\n"unclosed,' + 'x'.repeat(1_100_000)), 'line 2', /longer than/],
    [Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)), 'header', /lacks|empty/],
  ];
  for (const [bytes, param, message] of cases) {
    await assert.rejects(
      () => csvKnowledge(bytes),
      (err: unknown) => {
        assert.ok(err instanceof AppError, String(err));
        assert.equal(err.code, 'INVALID_DATA');
        assert.equal(err.param, param, err.message);
        assert.match(err.message, message);
        return true;
      },
      `${Buffer.from(bytes).subarray(0, 30).toString('latin1')}`,
    );
  }
});

test('a CSV body over the entry limit stops reading at the limit and is refused by the schema', async () => {
  const rows = Array.from({ length: 5000 }, (_, i) => `问题${i},答${i}`).join('\n');
  const { body } = await csvKnowledge(Buffer.from(`title,reply\n${rows}\n`));
  assert.equal(body.entries.length, KNOWLEDGE_LIMITS.entriesPerRequest + 1);
  assert.equal(issues(body)[0]?.path, 'entries');
});
