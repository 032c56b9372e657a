/** prepare-data as a real process on the hand-made CSVs: exact output lines, split, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { CLI_DIR, PROJECT_ROOT } from '../helpers/paths.js';
import { readJson } from '../helpers/json.js';

const FIXTURES = join(PROJECT_ROOT, 'test/fixtures/lawzhidao');
const UTF8 = join(FIXTURES, 'awkward-utf8-bom-crlf.csv');
const GBK = join(FIXTURES, 'awkward-gbk.csv');
const dir = mkdtempSync(join(tmpdir(), 'prepare-data-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]) => runCli('prepare-data', args);

function lines(path: string): string[] {
  return readFileSync(path, 'utf8').split('\n').slice(0, -1);
}

const conv = (user: string, assistant: string) =>
  JSON.stringify({ conversations: [{ role: 'user', content: user }, { role: 'assistant', content: assistant }] });

/** Every kept conversation of the awkward fixture, in file order (see fixtures/lawzhidao/README.md). */
const ALL = [
  conv('劳动合同到期不续签有补偿吗', '根据《劳动合同法》第四十六条，合同期满用人单位不续签的，应当支付经济补偿。'),
  conv('借钱不还怎么办, 有借条\n对方借了我两万元，写了借条，现在不还', '可以先催告，再向法院起诉, 借条是关键证据。'),
  conv('房东不退押金\n房东说"墙脏了"要扣押金', '押金应当返还，除非合同约定了扣除情形。'),
  conv('离婚后孩子抚养权归谁\n孩子两岁\n跟谁？', '不满两周岁的子女，以由母亲直接抚养为原则。\n已满八周岁的，应当尊重其真实意愿。'),
  conv('网购收到假货', '可以要求退一赔三，依据是《消费者权益保护法》第五十五条。'),
  conv('试用期可以随时辞退吗', '不可以。试用期内解除合同，用人单位须证明劳动者不符合录用条件。'),
  conv('公司拖欠工资\n公司拖欠工资三个月了怎么办', '可以向劳动监察部门投诉，或者申请劳动仲裁。'),
];

/** train and dev are each in file order, together they are ALL, and they share nothing. */
function assertSplit(out: string, nDev: number): { train: string[]; dev: string[] } {
  const train = lines(join(out, 'train.json'));
  const dev = lines(join(out, 'dev.json'));
  assert.equal(dev.length, nDev);
  assert.equal(train.length, ALL.length - nDev);
  assert.deepEqual(train, ALL.filter((l) => train.includes(l)));
  assert.deepEqual(dev, ALL.filter((l) => dev.includes(l)));
  assert.deepEqual([...train, ...dev].sort(), [...ALL].sort());
  return { train, dev };
}

test('the awkward UTF-8 CSV becomes exactly the expected conversations, with a summary of every drop', async () => {
  const out = join(dir, 'utf8');
  const r = await run('--csv', UTF8, '--out', out, '--dev-size', '2', '--seed', '7');
  assert.equal(r.code, 0, r.stderr);
  assertSplit(out, 2);
  assert.deepEqual(r.stdout.trim().split('\n'), [
    `read 13 rows from ${UTF8} (UTF-8)`,
    `kept 7: train 5 → ${join(out, 'train.json')}, dev 2 → ${join(out, 'dev.json')} (seed 7)`,
    'dropped 1 duplicate',
    'dropped 1 empty_prompt',
    'dropped 1 empty_reply',
    'dropped 1 malformed_field_count',
    'dropped 1 malformed_is_best',
    'dropped 1 malformed_quote',
    '  line 10: FIELD_COUNT Invalid Record Length: expect 4, got 2',
    '  line 11: IS_BEST is_best must be 0 or 1, got "2"',
    '  line 17: QUOTE Quote Not Closed: the parsing is finished with an opening quote',
  ]);
  const summary = readJson<{ kept: number; dropped: Record<string, number> }>(join(out, 'prepare-summary.json'));
  assert.equal(summary.kept, 7);
  assert.deepEqual(summary.dropped, {
    malformed_field_count: 1,
    malformed_is_best: 1,
    malformed_quote: 1,
    empty_reply: 1,
    duplicate: 1,
    empty_prompt: 1,
  });
  // No temporary files are left beside the outputs.
  assert.deepEqual(readdirSync(out).sort(), ['dev.json', 'prepare-summary.json', 'train.json']);
});

test('the GBK copy gives the same files byte for byte; the split is fixed by the seed, not the row order', async () => {
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  assert.equal((await run('--csv', UTF8, '--out', a, '--dev-size', '3', '--seed', '11')).code, 0);
  assert.equal((await run('--csv', GBK, '--out', b, '--dev-size', '3', '--seed', '11')).code, 0);
  for (const f of ['train.json', 'dev.json']) assert.equal(readFileSync(join(b, f), 'utf8'), readFileSync(join(a, f), 'utf8'));

  // The same rows in reverse order: the same dev set.
  const reversed = join(dir, 'reversed.csv');
  const good = ALL.map((l) => JSON.parse(l) as { conversations: Array<{ content: string }> });
  const csvRows = good.map((c) => {
    const [title, ...rest] = c.conversations[0]!.content.split('\n');
    const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
    return [q(title!), q(rest.join('\n')), q(c.conversations[1]!.content), '1'].join(',');
  });
  writeFileSync(reversed, ['title,question,reply,is_best', ...csvRows.reverse()].join('\n') + '\n');
  const c = join(dir, 'c');
  assert.equal((await run('--csv', reversed, '--out', c, '--dev-size', '3', '--seed', '11')).code, 0);
  assert.deepEqual(lines(join(c, 'dev.json')).sort(), lines(join(a, 'dev.json')).sort());

  // Another seed picks another dev set (7 choose 3 = 35 sets; these two seeds differ).
  const d = join(dir, 'd');
  assert.equal((await run('--csv', UTF8, '--out', d, '--dev-size', '3', '--seed', '12')).code, 0);
  const devA = lines(join(a, 'dev.json'));
  const devD = lines(join(d, 'dev.json'));
  assertSplit(d, 3);
  assert.notDeepEqual(devD, devA);
});

test('--best-only keeps answers marked 1; --dev-ratio rounds; the default ratio is 0.1', async () => {
  const out = join(dir, 'best');
  const r = await run('--csv', UTF8, '--out', out, '--best-only', '--dev-ratio', '0.5');
  assert.equal(r.code, 0, r.stderr);
  const all = [...lines(join(out, 'train.json')), ...lines(join(out, 'dev.json'))].sort();
  assert.deepEqual(all, [ALL[0], ALL[1], ALL[3], ALL[5], ALL[6]].sort());
  assert.equal(lines(join(out, 'dev.json')).length, 3); // round(0.5 × 5) = 3 (round half up)
  assert.match(r.stdout, /dropped 3 not_best/); // lines 4, 12 (0) and 13 (empty is_best)
  const def = join(dir, 'default');
  assert.equal((await run('--csv', UTF8, '--out', def)).code, 0);
  assert.equal(lines(join(def, 'dev.json')).length, 1); // round(0.1 × 7) = 1
});

test('bad flags exit 2 naming the flag; a failed run leaves the output directory as it was', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--out', dir], /error INVALID_REQUEST: --csv: is required/],
    [['--csv', UTF8], /error INVALID_REQUEST: --out: is required/],
    [['--csv', UTF8, '--out', dir, '--dev-size', 'x'], /error INVALID_REQUEST: --dev-size: expected a number \(got "x"\)/],
    [['--csv', UTF8, '--out', dir, '--dev-size', '0'], /error INVALID_REQUEST: --dev-size: .*at least 1/],
    [['--csv', UTF8, '--out', dir, '--dev-size', '1.5'], /error INVALID_REQUEST: --dev-size: .*whole number/],
    [['--csv', UTF8, '--out', dir, '--dev-ratio', '1'], /error INVALID_REQUEST: --dev-ratio: .*below 1/],
    [['--csv', UTF8, '--out', dir, '--dev-ratio', ''], /error INVALID_REQUEST: --dev-ratio: .*expected a number/],
    [['--csv', UTF8, '--out', dir, '--dev-size', '2', '--dev-ratio', '0.2'], /not both/],
    [['--csv', UTF8, '--out', dir, '--seed', 'abc'], /error INVALID_REQUEST: --seed: /],
    [['--csv', UTF8, '--out', dir, '--encoding', 'latin1'], /error INVALID_REQUEST: --encoding: /],
    [['--csv', UTF8, '--out', dir, '--frobnicate'], /error INVALID_REQUEST: Unknown option '--frobnicate'/],
    [['--csv', UTF8, '--out', dir, 'stray'], /error INVALID_REQUEST: Unexpected argument 'stray'/],
    [['--csv'], /error INVALID_REQUEST: Option '--csv <value>' argument missing/],
  ];
  const results = await Promise.all(cases.map(([args]) => run(...args)));
  cases.forEach(([args, message], i) => {
    const r = results[i]!;
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    // The usage follows when a flag is at fault.
    if (r.stderr.includes(`: --`) || /'--/.test(r.stderr)) assert.match(r.stderr, /usage: npm run prepare-data/);
  });

  // Asking for more dev rows than there are conversations: nothing is written, old files stay.
  const out = join(dir, 'keep');
  assert.equal((await run('--csv', UTF8, '--out', out, '--dev-size', '2')).code, 0);
  const before = readFileSync(join(out, 'train.json'), 'utf8');
  const r = await run('--csv', UTF8, '--out', out, '--dev-size', '7');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /error INVALID_REQUEST: --dev-size: 7 leaves no training rows: only 7 rows are kept/);
  assert.equal(readFileSync(join(out, 'train.json'), 'utf8'), before);
  assert.deepEqual(readdirSync(out).sort(), ['dev.json', 'prepare-summary.json', 'train.json']);

  // A CSV that cannot be read: exit 1, and no output directory is created.
  const missing = await run('--csv', join(dir, 'nope.csv'), '--out', join(dir, 'never'));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error INVALID_DATA: .*ENOENT/);
  assert.equal(existsSync(join(dir, 'never')), false);

  // A CSV whose every row is dropped: exit 1, nothing written.
  const empty = join(dir, 'all-dropped.csv');
  writeFileSync(empty, 'title,question,reply,is_best\n问题,, ,1\n');
  const none = await run('--csv', empty, '--out', join(dir, 'none'));
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no usable rows \(1 read, all dropped\)/);
  assert.deepEqual(readdirSync(join(dir, 'none')), []);
});

test('Ctrl-C while writing: exit 130, and the temporary files are removed', async () => {
  const big = join(dir, 'big.csv');
  const row = (i: number) => `"第${i}号：劳动合同到期不续签有补偿吗","合同到期，公司不续签。","根据《劳动合同法》，用人单位应当支付经济补偿，每满一年支付一个月工资。",1\n`;
  writeFileSync(big, 'title,question,reply,is_best\n' + Array.from({ length: 60_000 }, (_, i) => row(i)).join(''));
  const out = join(dir, 'interrupted');
  mkdirSync(out);
  const child = spawn(process.execPath, [join(CLI_DIR, 'prepare-data.js'), '--csv', big, '--out', out], { stdio: 'ignore' });
  const exited = once(child, 'exit');
  // Interrupt once the scratch file exists, i.e. in the middle of the run.
  while (!readdirSync(out).some((f) => f.endsWith('.tmp')) && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGINT');
  const [code] = await exited;
  assert.equal(code, 130);
  assert.deepEqual(readdirSync(out), []);
});
