/**
 * The evaluator as a real process against a protocol-level fake of the service's OpenAI API:
 * prepare-data on the sample CSV → eval --compare base --adapter → report with both columns.
 * (The same flow against the real gateway and worker is the e2e test.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../helpers/cli.js';
import { CLI_DIR, GOLDEN_DIR, PROJECT_ROOT } from '../helpers/paths.js';
import { startFakeOpenAi, type FakeOpenAi, type FakeRequest } from '../helpers/fake-openai.js';
import type { EvalResult } from '../../src/data/evaluate.js';
import { readJson } from '../helpers/json.js';
import { meanScores, scoreAnswer } from '../../src/data/metrics.js';
import type { ScoreResult } from '../../src/data/score-file.js';

const run = promisify(execFile);
const SAMPLE = join(PROJECT_ROOT, 'data/sample/lawzhidao-sample.csv');
const dir = mkdtempSync(join(tmpdir(), 'eval-'));
let fake: FakeOpenAi;
const references = new Map<string, string>();

const GENERIC = '这个问题需要结合具体情况分析，建议咨询律师。';

test.before(async () => {
  await run(process.execPath, [join(CLI_DIR, 'prepare-data.js'), '--csv', SAMPLE, '--out', join(dir, 'data'), '--dev-size', '12']);
  for (const line of readFileSync(join(dir, 'data/dev.json'), 'utf8').trim().split('\n')) {
    const c = JSON.parse(line).conversations;
    references.set(c[0].content, c[1].content);
  }
  fake = await startFakeOpenAi({
    models: [{ id: 'chatglm3-6b' }, { id: 'law-lora', parent: 'chatglm3-6b' }, { id: 'flaky' }],
    // flaky's successful answers come "from the fallback".
    degraded: (req: FakeRequest) => req.model === 'flaky',
    answer: (req: FakeRequest) => {
      const prompt = req.messages.at(-1)!.content;
      if (req.model === 'law-lora') return references.get(prompt) ?? GENERIC;
      if (req.model === 'flaky') return prompt.length % 2 === 0 ? 500 : GENERIC;
      return GENERIC;
    },
  });
});

test.after(async () => {
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const evalCli = (...args: string[]) => runCli('eval', args);

test('eval --compare base against an adapter: both columns in the report, JSON and chart', async () => {
  const out = join(dir, 'report');
  fake.requests.length = 0;
  const r = await evalCli('--data', join(dir, 'data/dev.json'), '--url', fake.url, '--adapter', 'law-lora', '--compare', 'base', '--out', out, '--max-tokens', '300');
  assert.equal(r.code, 0, r.stderr);

  // Every conversation went to each model once, greedy, with the flags' limits.
  assert.equal(fake.requests.length, 24);
  assert.deepEqual([...new Set(fake.requests.map((q) => q.model))].sort(), ['chatglm3-6b', 'law-lora']);
  for (const q of fake.requests) {
    assert.equal(q.temperature, 0);
    assert.equal(q.max_tokens, 300);
    assert.equal(q.messages.at(-1)!.role, 'user');
    assert.ok(references.has(q.messages.at(-1)!.content));
  }

  const json = readJson<EvalResult>(join(out, 'eval-report.json'));
  assert.deepEqual(json.models.map((m) => [m.label, m.model, m.scored, m.failed]), [
    ['微调前', 'chatglm3-6b', 12, 0],
    ['微调后', 'law-lora', 12, 0],
  ]);
  assert.deepEqual(json.models.map((m) => m.degraded), [0, 0]);
  assert.doesNotMatch(readFileSync(join(out, 'eval-report.md'), 'utf8'), /came from the gateway's fallback/);
  // The adapter answers with a reference for the question (the sample has several answers to
  // some questions, so not always this conversation's): those answers score 100 on every metric.
  // The base gives one generic answer and scores far lower.
  const exact = json.samples.filter((s) => s.answers[1]!.answer === s.reference);
  assert.ok(exact.length >= 8, `${exact.length} exact answers`);
  for (const s of exact) assert.deepEqual(s.answers[1]!.scores, { 'bleu-4': 100, 'rouge-1': 100, 'rouge-2': 100, 'rouge-l': 100 });
  for (const k of ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l'] as const) {
    assert.ok(json.models[0]!.scores[k] < 40, `base ${k} ${json.models[0]!.scores[k]}`);
    assert.ok(json.models[1]!.scores[k] > json.models[0]!.scores[k] + 40, `adapter ${k} ${json.models[1]!.scores[k]}`);
  }
  assert.equal(json.samples.length, 12);
  assert.ok(json.samples.every((s) => s.answers[0]!.answer === GENERIC));

  const md = readFileSync(join(out, 'eval-report.md'), 'utf8');
  assert.match(md, /\| 指标 metric \| 微调前 \(`chatglm3-6b`\) \| 微调后 \(`law-lora`\) \| 变化 Δ \|/);
  const fmt = (x: number) => x.toFixed(2);
  const [before, after] = json.models;
  for (const [name, k] of [['BLEU-4', 'bleu-4'], ['ROUGE-1', 'rouge-1'], ['ROUGE-2', 'rouge-2'], ['ROUGE-L', 'rouge-l']] as const) {
    const row = `| ${name} | ${fmt(before!.scores[k])} | ${fmt(after!.scores[k])} | +${fmt(after!.scores[k] - before!.scores[k])} |`;
    assert.ok(md.includes(row), `missing ${row}`);
  }
  assert.match(md, /words cut by jieba/);
  assert.match(md, /!\[scores\]\(eval-chart\.svg\)/);

  const svg = readFileSync(join(out, 'eval-chart.svg'), 'utf8');
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.match(svg, />微调前 \/ 微调后</);
  // Four metrics × two models, each bar with its value.
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 8);
  for (const m of json.models) for (const v of Object.values(m.scores)) assert.ok(svg.includes(`>${fmt(v)}<`), `bar label ${fmt(v)}`);

  assert.match(r.stdout, /^12 conversations from /);
  assert.ok(r.stdout.includes(`rouge-l\t${fmt(before!.scores['rouge-l'])}\t${fmt(after!.scores['rouge-l'])}`));
});

test('without --adapter the base model is evaluated alone; --limit takes the first N', async () => {
  const out = join(dir, 'base-only');
  fake.requests.length = 0;
  const r = await evalCli('--data', join(dir, 'data/dev.json'), '--url', fake.url, '--limit', '3', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(fake.requests.length, 3);
  assert.ok(fake.requests.every((q) => q.model === 'chatglm3-6b'));
  const json = readJson<EvalResult>(join(out, 'eval-report.json'));
  assert.deepEqual(json.models.map((m) => m.label), ['微调后']);
  assert.doesNotMatch(readFileSync(join(out, 'eval-report.md'), 'utf8'), /变化 Δ/);
});

test('failed requests are recorded per answer and left out of the means', async () => {
  const out = join(dir, 'flaky');
  const r = await evalCli('--data', join(dir, 'data/dev.json'), '--url', fake.url, '--adapter', 'flaky', '--out', out, '--concurrency', '4');
  assert.equal(r.code, 0, r.stderr);
  const json = readJson<EvalResult>(join(out, 'eval-report.json'));
  const failing = [...references.keys()].filter((p) => p.length % 2 === 0).length;
  assert.ok(failing > 0 && failing < 12, `the sample split should give some failures (${failing})`);
  assert.equal(json.models[0]!.failed, failing);
  assert.equal(json.models[0]!.scored, 12 - failing);
  // Its answers came from the fallback: flagged per answer, counted, and called out in the report.
  assert.equal(json.models[0]!.degraded, 12 - failing);
  assert.ok(json.samples.every((s) => s.answers[0]!.degraded === (s.answers[0]!.answer !== null)));
  assert.match(readFileSync(join(out, 'eval-report.md'), 'utf8'), /\| from the fallback \| \d+ \|[\s\S]*came from the gateway's fallback/);
  const failed = json.samples.filter((s) => s.answers[0]!.answer === null);
  assert.equal(failed.length, failing);
  assert.match(failed[0]!.answers[0]!.error!, /HTTP 500 worker_error/);
  assert.match(r.stdout, new RegExp(`failed\\t${failing}\nfallback\\t${12 - failing}`));
});

test('bad dev.json lines are reported with their numbers and skipped; a file with none usable fails', async () => {
  const data = join(dir, 'mixed.json');
  const good = readFileSync(join(dir, 'data/dev.json'), 'utf8').trim().split('\n')[0]!;
  writeFileSync(
    data,
    [
      good,
      '{"conversations": [',
      JSON.stringify({ conversations: [{ role: 'user', content: 'only a question' }] }),
      JSON.stringify({ conversations: [{ role: 'user', content: 'q' }, { role: 'robot', content: 'a' }] }),
      JSON.stringify({ conversations: [{ role: 'assistant', content: 'a' }, { role: 'user', content: 'q' }] }),
      JSON.stringify({ conversations: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '  ' }] }),
      JSON.stringify({ messages: [] }),
      '',
      good,
    ].join('\n'),
  );
  const r = await evalCli('--data', data, '--url', fake.url, '--out', join(dir, 'mixed'));
  assert.equal(r.code, 0, r.stderr);
  const reported = r.stderr.trim().split('\n');
  const expected = [
    /line 2: skipped: not JSON: /,
    /line 3: skipped: conversations: needs a user turn and an assistant turn$/,
    /line 4: skipped: conversations\.1\.role: Invalid option/,
    /line 5: skipped: conversations: the last turn must be the assistant's$/,
    /line 6: skipped: conversations: the reference \(last assistant turn\) is empty$/,
    /line 7: skipped: conversations: Invalid input: expected array/,
  ];
  assert.equal(reported.length, expected.length, r.stderr);
  expected.forEach((re, i) => assert.match(reported[i]!, re));
  assert.match(r.stdout, /^2 conversations from .* \(6 bad lines skipped\)/);

  writeFileSync(data, 'garbage\n{}\n[1,2]\n');
  const bad = await evalCli('--data', data, '--url', fake.url, '--out', join(dir, 'mixed'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /error INVALID_DATA: .*no conversations to evaluate/);
});

test('flag garbage and service problems: clear errors, the right exit codes', async (ctx) => {
  const data = join(dir, 'data/dev.json');
  const cases: Array<[string[], number, RegExp]> = [
    [['--url', fake.url], 2, /error INVALID_REQUEST: --data: is required/],
    [['--data', data], 2, /error INVALID_REQUEST: --url: is required/],
    [['--data', data, '--url', 'localhost:8080'], 2, /error INVALID_REQUEST: --url: must be an http\(s\) URL/],
    [['--data', data, '--url', fake.url, '--limit', '0'], 2, /error INVALID_REQUEST: --limit: .*at least 1/],
    [['--data', data, '--url', fake.url, '--concurrency', 'many'], 2, /error INVALID_REQUEST: --concurrency: .*expected a number/],
    [['--data', data, '--url', fake.url, '--verbose'], 2, /error INVALID_REQUEST: Unknown option '--verbose'/],
    [['--data', data, '--url', fake.url, '--compare', 'base'], 2, /error INVALID_REQUEST: --compare: needs --adapter/],
    [['--data', data, '--url', fake.url, '--adapter', 'nope'], 2, /error INVALID_REQUEST: --adapter: the service has no model "nope" \(it lists chatglm3-6b, law-lora, flaky\)/],
    [['--data', join(dir, 'missing.json'), '--url', fake.url], 1, /INVALID_DATA: .*ENOENT/],
    [['--data', data, '--url', 'http://127.0.0.1:9', '--timeout-ms', '2000'], 1, /error UPSTREAM_ERROR: GET http:\/\/127\.0\.0\.1:9\/v1\/models: Connection error/],
  ];
  // Independent processes: run side by side.
  const results = await Promise.all(cases.map(([args]) => evalCli(...args, '--out', join(dir, 'errors'))));
  cases.forEach(([args, code, message], i) => {
    assert.equal(results[i]!.code, code, `${args.join(' ')}: ${results[i]!.stderr}`);
    assert.match(results[i]!.stderr, message, args.join(' '));
  });

  // A service that wants a key: a wrong key stops the run at once; the right one works.
  const locked = await startFakeOpenAi({ models: [{ id: 'm' }], answer: () => '好', apiKey: 'sk-right' });
  ctx.after(() => locked.close());
  const wrong = await evalCli('--data', data, '--url', locked.url, '--api-key', 'sk-wrong', '--out', join(dir, 'locked'));
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /UPSTREAM_ERROR: GET http.*\/v1\/models: HTTP 401 invalid_api_key/);
  const right = await evalCli('--data', data, '--url', locked.url, '--api-key', 'sk-right', '--limit', '2', '--out', join(dir, 'locked'));
  assert.equal(right.code, 0, right.stderr);
  assert.ok(locked.requests.every((q) => q.authorization === 'Bearer sk-right'));
});

interface GoldenCase {
  prediction: string;
  reference: string;
  bleu4: number;
}

test('eval --score: the file’s answers scored without a service, each case in input order beside the means', async () => {
  const golden = readJson<{ cases: GoldenCase[] }>(join(GOLDEN_DIR, 'eval/bleu.json')).cases;
  const file = join(dir, 'answers.jsonl');
  // Blank lines are skipped; other fields are ignored.
  const lines = golden.map((c, i) => JSON.stringify({ id: i, prediction: c.prediction, reference: c.reference }));
  writeFileSync(file, `\uFEFF${lines.slice(0, 3).join('\n')}\n\n${lines.slice(3).join('\r\n')}\n`);
  const out = join(dir, 'scored');
  const r = await evalCli('--score', file, '--out', out);
  assert.equal(r.code, 0, r.stderr);

  const json = readJson<ScoreResult>(join(out, 'eval-report.json'));
  assert.equal(json.data, file);
  assert.equal(json.cases.length, golden.length);
  json.cases.forEach((c, i) => {
    assert.deepEqual(Object.keys(c), ['bleu-4', 'rouge-1', 'rouge-2', 'rouge-l']);
    assert.ok(Math.abs(c['bleu-4'] - golden[i]!.bleu4) <= 1e-4, `case ${i}: BLEU-4 ${c['bleu-4']} ≠ ${golden[i]!.bleu4}`);
    assert.deepEqual(c, scoreAnswer(golden[i]!.prediction, golden[i]!.reference));
  });
  assert.deepEqual(json.scores, meanScores(json.cases));
  // The identical pair (100 on every metric) is where the file has it.
  const identical = golden.findIndex((c) => c.prediction === c.reference);
  assert.deepEqual(json.cases[identical], { 'bleu-4': 100, 'rouge-1': 100, 'rouge-2': 100, 'rouge-l': 100 });

  const md = readFileSync(join(out, 'eval-report.md'), 'utf8');
  assert.ok(md.includes(`| BLEU-4 | ${json.scores['bleu-4'].toFixed(2)} |`), md);
  assert.match(md, new RegExp(`\\| answers scored \\| ${golden.length} \\|`));
  assert.match(md, /words cut by jieba/);
  const svg = readFileSync(join(out, 'eval-chart.svg'), 'utf8');
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 4);
  assert.match(svg, new RegExp(`${golden.length} answers`));
  assert.match(r.stdout, new RegExp(`^${golden.length} answers from .*\nmetric\tscore\nbleu-4\t${json.scores['bleu-4'].toFixed(2)}\n`));
});

test('eval --score: a bad line stops the run with one line naming the line and the field; bad flags exit 2', async () => {
  const good = JSON.stringify({ prediction: '可以起诉。', reference: '可以向法院起诉。' });
  const file = (name: string, body: string) => {
    const path = join(dir, name);
    writeFileSync(path, body);
    return path;
  };
  const dataCases: Array<[string, RegExp]> = [
    [`${good}\n{"prediction": "x",\n`, /line 2: not JSON: /],
    [`${good}\n{"reference": "y"}\n`, /line 2: prediction: is required$/],
    [`${good}\n\n{"prediction": "x"}\n`, /line 3: reference: is required$/],
    [`${good}\n{"prediction": 1, "reference": "y"}\n`, /line 2: prediction: expected a string, got number$/],
    [`${good}\n{"prediction": "x", "reference": null}\n`, /line 2: reference: expected a string, got null$/],
    [`${good}\n{"prediction": ["x"], "reference": "y"}\n`, /line 2: prediction: expected a string, got an array$/],
    [`${good}\n{"prediction": "x", "reference": " \\n "}\n`, /line 2: reference: is empty$/],
    [`[1, 2]\n`, /line 1: expected an object \{"prediction", "reference"\}, got an array$/],
    [`"just text"\n`, /line 1: expected an object \{"prediction", "reference"\}, got string$/],
    [`null\n`, /line 1: expected an object \{"prediction", "reference"\}, got null$/],
    ['', /no answers to score/],
    ['\n\n  \n', /no answers to score/],
    ['\u0000\u0001\u0002garbage', /line 1: not JSON: /],
  ];
  const runs = await Promise.all(dataCases.map(([body], i) => evalCli('--score', file(`bad-${i}.jsonl`, body), '--out', join(dir, 'bad-out'))));
  dataCases.forEach(([body, message], i) => {
    const r = runs[i]!;
    assert.equal(r.code, 1, `${JSON.stringify(body)}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr.trim(), /^error INVALID_DATA: .*bad-\d+\.jsonl/);
    assert.match(r.stderr.trim(), message, JSON.stringify(body));
  });

  const ok = file('ok.jsonl', `${good}\n`);
  const flagCases: Array<[string[], number, RegExp]> = [
    [['--score', ok, '--url', fake.url], 2, /error INVALID_REQUEST: --url: not used with --score/],
    [['--score', ok, '--data', ok], 2, /error INVALID_REQUEST: --data: not used with --score/],
    [['--score', ok, '--limit=3'], 2, /error INVALID_REQUEST: --limit: not used with --score/],
    [['--score', ok, '--verbose'], 2, /error INVALID_REQUEST: Unknown option '--verbose'/],
    [['--score'], 2, /error INVALID_REQUEST: Option '--score <value>' argument missing/],
    [['--score', ''], 2, /error INVALID_REQUEST: --score: is required/],
    [['--score', ok, '--out', join(ok, 'under-a-file')], 2, /error INVALID_REQUEST: --out: cannot create .*ENOTDIR/],
    [['--score', join(dir, 'missing.jsonl')], 1, /error INVALID_DATA: cannot read .*missing\.jsonl: ENOENT/],
  ];
  const flagRuns = await Promise.all(flagCases.map(([args]) => evalCli(...args)));
  flagCases.forEach(([args, code, message], i) => {
    assert.equal(flagRuns[i]!.code, code, `${args.join(' ')}: ${flagRuns[i]!.stderr}`);
    assert.match(flagRuns[i]!.stderr, message, args.join(' '));
  });
});
