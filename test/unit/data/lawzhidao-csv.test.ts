import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectEncoding, readLawzhidaoCsv, type LawzhidaoRow, type ReadCsvOptions, type SkippedRow } from '../../../src/data/lawzhidao-csv.js';
import { AppError } from '../../../src/shared/errors.js';
import { PROJECT_ROOT } from '../../helpers/paths.js';
import { gbkEncode } from '../../helpers/gbk.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures/lawzhidao');
const dir = mkdtempSync(join(tmpdir(), 'lawzhidao-csv-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(path: string, options: ReadCsvOptions = {}) {
  const rows: LawzhidaoRow[] = [];
  const skips: SkippedRow[] = [];
  let encoding = '';
  for await (const row of readLawzhidaoCsv(path, { ...options, onSkip: (s) => skips.push(s), onEncoding: (e) => (encoding = e) })) {
    rows.push(row);
  }
  return { rows, skips, encoding };
}

function tempFile(name: string, content: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

const COMPENSATION = '根据《劳动合同法》第四十六条，合同期满用人单位不续签的，应当支付经济补偿。';

/** What the awkward fixtures must read as, whatever their encoding and line ends. */
const EXPECTED_ROWS: LawzhidaoRow[] = [
  { line: 2, title: '劳动合同到期不续签有补偿吗', question: '', reply: COMPENSATION, isBest: true },
  { line: 3, title: '借钱不还怎么办, 有借条', question: '对方借了我两万元，写了借条，现在不还', reply: '可以先催告，再向法院起诉, 借条是关键证据。', isBest: true },
  { line: 4, title: '房东不退押金', question: '房东说"墙脏了"要扣押金', reply: '押金应当返还，除非合同约定了扣除情形。', isBest: false },
  {
    line: 5,
    title: '离婚后孩子抚养权归谁',
    question: '孩子两岁\n跟谁？',
    reply: '不满两周岁的子女，以由母亲直接抚养为原则。\n已满八周岁的，应当尊重其真实意愿。',
    isBest: true,
  },
  { line: 9, title: '遗产怎么继承', question: '遗产怎么继承？', reply: '', isBest: false },
  { line: 12, title: '劳动合同到期不续签有补偿吗', question: '', reply: COMPENSATION, isBest: false },
  { line: 13, title: '网购收到假货', question: '', reply: '可以要求退一赔三，依据是《消费者权益保护法》第五十五条。', isBest: null },
  { line: 14, title: '', question: '', reply: '没有标题也没有问题', isBest: true },
  { line: 15, title: '试用期可以随时辞退吗', question: '试用期可以随时辞退吗？', reply: '不可以。试用期内解除合同，用人单位须证明劳动者不符合录用条件。', isBest: true },
  { line: 16, title: '公司拖欠工资', question: '公司拖欠工资三个月了怎么办', reply: '可以向劳动监察部门投诉，或者申请劳动仲裁。', isBest: true },
];

const EXPECTED_SKIPS = [
  { line: 10, reason: 'FIELD_COUNT' },
  { line: 11, reason: 'IS_BEST' },
  { line: 17, reason: 'QUOTE' },
];

test('UTF-8 with BOM and CRLF: quoted commas, quotes and newlines, blank lines, skips with their lines', async () => {
  const { rows, skips, encoding } = await readAll(join(FIXTURES, 'awkward-utf8-bom-crlf.csv'));
  assert.equal(encoding, 'utf8');
  assert.deepEqual(rows, EXPECTED_ROWS);
  assert.deepEqual(skips.map(({ line, reason }) => ({ line, reason })), EXPECTED_SKIPS);
  assert.match(skips[0]!.message, /expect 4, got 2/);
  assert.match(skips[1]!.message, /is_best must be 0 or 1, got "2"/);
});

test('GBK is detected, and reads the same as UTF-8; forcing it works too', async () => {
  const gbk = join(FIXTURES, 'awkward-gbk.csv');
  for (const encoding of ['auto', 'gbk'] as const) {
    const out = await readAll(gbk, { encoding });
    assert.equal(out.encoding, 'gbk');
    assert.deepEqual(out.rows, EXPECTED_ROWS);
    assert.deepEqual(out.skips.map(({ line, reason }) => ({ line, reason })), EXPECTED_SKIPS);
  }
});

test('GBK read as UTF-8 by force: the rows with Chinese text are reported as bad bytes, not mangled', async () => {
  const out = await readAll(join(FIXTURES, 'awkward-gbk.csv'), { encoding: 'utf8' });
  assert.equal(out.rows.length, 0);
  const encodingSkips = out.skips.filter((s) => s.reason === 'ENCODING');
  assert.ok(encodingSkips.length >= 8, `expected bad-byte skips, got ${JSON.stringify(out.skips)}`);
  assert.match(encodingSkips[0]!.message, /not valid UTF-8/);
  assert.equal(encodingSkips[0]!.line, 2);
});

test('one row with bytes that are neither UTF-8 nor GBK is skipped with its line; the rest is read', async () => {
  const head = Buffer.from('title,question,reply,is_best\n合同纠纷,,依法处理。,1\n', 'utf8');
  const bad = Buffer.concat([Buffer.from('坏字节', 'utf8'), Buffer.from([0xff, 0xfe, 0xff]), Buffer.from(',,回答,0\n', 'utf8')]);
  const tail = Buffer.from('租房,押金,应当返还。,1\n', 'utf8');
  const out = await readAll(tempFile('bad-bytes.csv', Buffer.concat([head, bad, tail])));
  assert.equal(out.encoding, 'utf8');
  assert.deepEqual(out.rows.map((r) => [r.line, r.title]), [[2, '合同纠纷'], [4, '租房']]);
  assert.deepEqual(out.skips.map(({ line, reason }) => ({ line, reason })), [{ line: 3, reason: 'ENCODING' }]);
});

test('characters and CRLF split across read chunks are reassembled (UTF-8 and GBK, 3000 rows)', async () => {
  const rows: string[] = ['title,question,reply,is_best'];
  const expected: Array<[string, string, string]> = [];
  for (let i = 0; i < 3000; i++) {
    const title = `第${i}号问题：房屋租赁合同纠纷`;
    const question = i % 3 === 0 ? `补充说明${i}\n第二行` : '';
    const reply = `答复${i}：依照《民法典》合同编的规定处理，“押金”应当返还。`.repeat(1 + (i % 4));
    expected.push([title, question, reply]);
    rows.push(`${title},"${question.replace(/\n/g, '\r\n')}",${reply},${i % 2}`);
  }
  const text = rows.join('\r\n') + '\r\n';
  for (const [name, bytes] of [['chunks-utf8.csv', Buffer.from(text, 'utf8')], ['chunks-gbk.csv', gbkEncode(text)]] as const) {
    assert.ok(bytes.length > 3 * 64 * 1024);
    const out = await readAll(tempFile(name, bytes));
    assert.deepEqual(out.skips, []);
    assert.deepEqual(out.rows.map((r) => [r.title, r.question, r.reply]), expected, name);
    // Every third row spans two lines.
    assert.equal(out.rows[4]!.line, 2 + 4 + 2);
  }
});

test('a header without the needed columns, an empty file, a missing file and UTF-16 are INVALID_DATA', async () => {
  const cases: Array<[string, string | Buffer, RegExp, string]> = [
    ['no-columns.csv', 'foo,bar\n1,2\n', /header lacks title, reply/, 'header'],
    ['only-title.csv', 'title,question\n1,2\n', /header lacks reply/, 'header'],
    ['empty.csv', '', /empty: expected a header/, 'header'],
    ['utf16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('title,reply\n', 'utf16le')]), /UTF-16/, 'encoding'],
  ];
  for (const [name, content, message, param] of cases) {
    const path = tempFile(name, content);
    await assert.rejects(readAll(path), (err: unknown) => {
      assert.ok(err instanceof AppError, String(err));
      assert.equal(err.code, 'INVALID_DATA');
      assert.match(err.message, message);
      assert.equal(err.param, param);
      return true;
    });
  }
  await assert.rejects(readAll(join(dir, 'missing.csv')), (err: unknown) => err instanceof AppError && err.code === 'INVALID_DATA' && /ENOENT/.test(err.message));
  await assert.rejects(readAll(dir), (err: unknown) => err instanceof AppError && /not a regular file/.test(err.message));
});

test('header columns in another order, extra columns and no is_best column are fine', async () => {
  const out = await readAll(tempFile('reordered.csv', 'reply,extra,TITLE\n答复,x,标题\n'));
  assert.deepEqual(out.rows, [{ line: 2, title: '标题', question: '', reply: '答复', isBest: null }]);
});

test('an unclosed quote early in a big file stops the read with the line it starts on', async () => {
  const lines = ['title,question,reply,is_best', '好的一行,,答复,1', '坏的一行,"从这里开始没有闭合,答复,1'];
  for (let i = 0; i < 200; i++) lines.push(`后面的行${i},,答复${i},0`);
  const path = tempFile('unclosed.csv', lines.join('\n') + '\n');
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const row of readLawzhidaoCsv(path, { maxRecordChars: 1000 })) seen.push(row.line);
    })(),
    (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'INVALID_DATA');
      assert.match(err.message, /^line 3: a record longer than 1000 characters \(most likely an unclosed quote\)/);
      return true;
    },
  );
  assert.deepEqual(seen, [2]);
});

test('encoding detection: BOM, valid UTF-8, valid GBK, a character cut at the end of the sample', () => {
  assert.equal(detectEncoding(Buffer.from([0xef, 0xbb, 0xbf, 0x61]), true), 'utf8');
  assert.equal(detectEncoding(Buffer.from('劳动合同', 'utf8'), true), 'utf8');
  assert.equal(detectEncoding(gbkEncode('劳动合同纠纷'), true), 'gbk');
  const cut = Buffer.from('劳动合同', 'utf8').subarray(0, 7);
  assert.equal(detectEncoding(cut, false), 'utf8');
  // Neither UTF-8 nor GBK (a GBK lead byte before a newline): UTF-8, bad rows reported later.
  assert.equal(detectEncoding(Buffer.from([0x81, 0x0a, 0xc0, 0x0a]), true), 'utf8');
  assert.throws(() => detectEncoding(Buffer.from([0xfe, 0xff, 0, 0x61]), true), /UTF-16/);
});

test('garbage never crashes the reader: it reads, skips, or fails with INVALID_DATA', async () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const alphabet = ['"', ',', '\n', '\r', '\r\n', '标', '题', 'a', ' ', '\u0000', '""', '\uFFFD'];
  for (let n = 0; n < 40; n++) {
    let body = n % 2 === 0 ? 'title,question,reply,is_best\n' : '';
    const length = Math.floor(rand() * 400);
    for (let i = 0; i < length; i++) body += alphabet[Math.floor(rand() * alphabet.length)];
    const bytes = n % 5 === 0 ? Buffer.from(Array.from({ length: 300 }, () => Math.floor(rand() * 256))) : Buffer.from(body, 'utf8');
    const path = tempFile(`garbage-${n}.csv`, bytes);
    try {
      const out = await readAll(path);
      for (const s of out.skips) assert.ok(s.line >= 1 && Number.isInteger(s.line));
      for (const r of out.rows) assert.ok(r.line >= 2);
    } catch (err) {
      assert.ok(err instanceof AppError, `garbage ${n}: ${(err as Error).stack}`);
      assert.equal(err.code, 'INVALID_DATA');
    }
  }
  // The fixture itself, cut at every 97th byte, never crashes either.
  const whole = readFileSync(join(FIXTURES, 'awkward-utf8-bom-crlf.csv'));
  for (let cut = 1; cut < whole.length; cut += 97) {
    const path = tempFile('cut.csv', whole.subarray(0, cut));
    try {
      await readAll(path);
    } catch (err) {
      assert.ok(err instanceof AppError, `cut at ${cut}: ${(err as Error).stack}`);
    }
  }
});
