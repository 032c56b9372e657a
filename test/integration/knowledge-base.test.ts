/** build-kb as a real process, and the loader the gateway calls, on good files and garbage. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKnowledgeEntries, type KnowledgeSkip } from '../../src/data/knowledge-base.js';
import { AppError } from '../../src/shared/errors.js';
import type { KnowledgeEntry } from '../../src/shared/knowledge-entry.js';
import { runCli } from '../helpers/cli.js';
import { PROJECT_ROOT } from '../helpers/paths.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures/lawzhidao');
const UTF8 = join(FIXTURES, 'awkward-utf8-bom-crlf.csv');
const GBK = join(FIXTURES, 'awkward-gbk.csv');
const dir = mkdtempSync(join(tmpdir(), 'knowledge-base-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const buildKb = (...args: string[]) => runCli('build-kb', args);

/** The id rule, stated independently: `lz-` + 12 hex digits of sha1(title NUL question NUL reply). */
function entry(title: string, question: string, reply: string): KnowledgeEntry {
  const id = `lz-${createHash('sha1').update(`${title}\0${question}\0${reply}`).digest('hex').slice(0, 12)}`;
  return { id, title, question, reply };
}

const EXPECTED: KnowledgeEntry[] = [
  entry('劳动合同到期不续签有补偿吗', '', '根据《劳动合同法》第四十六条，合同期满用人单位不续签的，应当支付经济补偿。'),
  entry('借钱不还怎么办, 有借条', '对方借了我两万元，写了借条，现在不还', '可以先催告，再向法院起诉, 借条是关键证据。'),
  entry('房东不退押金', '房东说"墙脏了"要扣押金', '押金应当返还，除非合同约定了扣除情形。'),
  entry('离婚后孩子抚养权归谁', '孩子两岁\n跟谁？', '不满两周岁的子女，以由母亲直接抚养为原则。\n已满八周岁的，应当尊重其真实意愿。'),
  entry('网购收到假货', '', '可以要求退一赔三，依据是《消费者权益保护法》第五十五条。'),
  entry('试用期可以随时辞退吗', '试用期可以随时辞退吗？', '不可以。试用期内解除合同，用人单位须证明劳动者不符合录用条件。'),
  entry('公司拖欠工资', '公司拖欠工资三个月了怎么办', '可以向劳动监察部门投诉，或者申请劳动仲裁。'),
];

async function load(path: string, options: { bestOnly?: boolean } = {}) {
  const skips: KnowledgeSkip[] = [];
  const entries = await loadKnowledgeEntries(path, { ...options, onSkip: (s) => skips.push(s) });
  return { entries, skips };
}

test('build-kb writes exactly the expected entries; the loader reads them back, and reads the CSV directly', async () => {
  const out = join(dir, 'kb.jsonl');
  const r = await buildKb('--csv', UTF8, '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.split('\n').slice(0, 3), [`read 13 rows from ${UTF8} (UTF-8)`, `wrote 7 entries → ${out}`, 'dropped 1 duplicate']);
  assert.deepEqual(readFileSync(out, 'utf8').split('\n').slice(0, -1), EXPECTED.map((e) => JSON.stringify(e)));

  const fromJsonl = await load(out);
  assert.deepEqual(fromJsonl.entries, EXPECTED);
  assert.deepEqual(fromJsonl.skips, []);

  for (const csv of [UTF8, GBK]) {
    const fromCsv = await load(csv);
    assert.deepEqual(fromCsv.entries, EXPECTED);
    assert.deepEqual(fromCsv.skips.map((s) => `${s.line} ${s.reason} ${s.reason === 'DROPPED' ? s.message : ''}`.trim()), [
      '9 DROPPED empty_reply',
      '10 FIELD_COUNT',
      '11 IS_BEST',
      '12 DROPPED duplicate',
      '14 DROPPED empty_prompt',
      '17 QUOTE',
    ]);
  }
  const best = await load(UTF8, { bestOnly: true });
  assert.deepEqual(best.entries, [EXPECTED[0], EXPECTED[1], EXPECTED[3], EXPECTED[5], EXPECTED[6]]);
});

test('a JSONL knowledge base with garbage lines: each is reported with its line and skipped', async () => {
  const good = (n: number) => JSON.stringify({ id: `e${n}`, title: `标题${n}`, question: '', reply: `答复${n}` });
  const path = join(dir, 'garbage.jsonl');
  const lines = [
    '\uFEFF' + good(1), // 1: BOM before the first entry
    '{not json', // 2
    '', // 3: blank, ignored
    '[]', // 4
    JSON.stringify({ id: 'e5', title: '缺答复' }), // 5
    JSON.stringify({ id: '', title: 't', reply: 'r' }), // 6
    JSON.stringify({ id: 'e7', title: '标题', reply: 42 }), // 7
    good(1), // 8: same id again
    'null', // 9
    '42', // 10
    '   ' + good(11) + '   ', // 11: surrounding spaces are fine
    JSON.stringify({ id: 'e12', title: '没有问题字段', reply: '默认为空' }), // 12: question defaults to ''
  ];
  writeFileSync(path, lines.join('\r\n') + '\r\n');
  const { entries, skips } = await load(path);
  assert.deepEqual(entries.map((e) => e.id), ['e1', 'e11', 'e12']);
  assert.equal(entries[2]!.question, '');
  assert.deepEqual(skips.map((s) => [s.line, s.reason]), [
    [2, 'JSON'],
    [4, 'SCHEMA'],
    [5, 'SCHEMA'],
    [6, 'SCHEMA'],
    [7, 'SCHEMA'],
    [8, 'DUPLICATE_ID'],
    [9, 'SCHEMA'],
    [10, 'SCHEMA'],
  ]);
  assert.match(skips[2]!.message, /^reply: /);
  assert.match(skips[3]!.message, /^id: /);
  assert.match(skips[4]!.message, /^reply: /);

  // Random bytes never crash the loader.
  const junk = join(dir, 'junk.jsonl');
  writeFileSync(junk, Buffer.from(Array.from({ length: 2000 }, (_, i) => (i * 7919 + 13) % 256)));
  const out = await load(junk);
  assert.deepEqual(out.entries, []);
  assert.ok(out.skips.length > 0);
});

test('files the loader cannot use at all are INVALID_DATA naming the file', async () => {
  const txt = join(dir, 'kb.txt');
  writeFileSync(txt, 'hello');
  const headerless = join(dir, 'headerless.csv');
  writeFileSync(headerless, 'a,b\n1,2\n');
  const cases: Array<[string, RegExp]> = [
    [txt, /a knowledge base is a \.jsonl file \(from build-kb\) or a lawzhidao \.csv/],
    [join(dir, 'missing.jsonl'), /ENOENT/],
    [headerless, /header lacks title, reply/],
  ];
  for (const [path, message] of cases) {
    await assert.rejects(loadKnowledgeEntries(path, { onSkip: () => {} }), (err: unknown) => {
      assert.ok(err instanceof AppError);
      assert.equal(err.code, 'INVALID_DATA');
      assert.match(err.message, message);
      return true;
    });
  }
});

test('without onSkip, skipped lines are reported on stderr with their line numbers', async () => {
  const script = `import { loadKnowledgeEntries } from ${JSON.stringify(join(PROJECT_ROOT, 'dist/src/data/knowledge-base.js'))};
const e = await loadKnowledgeEntries(${JSON.stringify(UTF8)}); console.log(e.length);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '7');
  assert.match(r.stderr, new RegExp(`knowledge base ${UTF8.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line 10: skipped \\(FIELD_COUNT\\)`));
  assert.equal(r.stderr.trim().split('\n').length, 6);
});

test('build-kb: bad flags exit 2 naming the flag; a failed build leaves no file', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--out', join(dir, 'x.jsonl')], /error INVALID_REQUEST: --csv: /],
    [['--csv', UTF8, '--out', join(dir, 'x.json')], /error INVALID_REQUEST: --out: must end in \.jsonl/],
    [['--csv', UTF8, '--out', join(dir, 'x.jsonl'), '--encoding', 'big5'], /error INVALID_REQUEST: --encoding: /],
    [['--csv', UTF8, '--out', join(dir, 'x.jsonl'), '--limit', '3'], /error INVALID_REQUEST: Unknown option '--limit'/],
  ];
  const results = await Promise.all(cases.map(([args]) => buildKb(...args)));
  cases.forEach(([, message], i) => {
    assert.equal(results[i]!.code, 2, results[i]!.stderr);
    assert.match(results[i]!.stderr, message);
  });
  const empty = join(dir, 'dropped.csv');
  writeFileSync(empty, 'title,question,reply,is_best\n问题,,,0\n');
  const r0 = await buildKb('--csv', empty, '--out', join(dir, 'none.jsonl'));
  assert.equal(r0.code, 1);
  assert.match(r0.stderr, /no usable rows/);
  assert.equal(existsSync(join(dir, 'none.jsonl')), false);
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  const r1 = await buildKb('--csv', UTF8, '--out', join(dir, 'no-such-dir', 'kb.jsonl'));
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /error INVALID_REQUEST: --out: cannot write .*ENOENT/);
});
