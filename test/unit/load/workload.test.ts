/** The load test's pieces: flags (garbage in, one clear error out), the request mix, answer classes, the report. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLoadFlags } from '../../../src/load/flags.js';
import { MIX, buildRequest, classify, pickKind, type RequestKind } from '../../../src/load/workload.js';
import { degradedShare, formatTable, type LoadSummary } from '../../../src/load/report.js';

test('flags: defaults aim at the local gateway, bounded in time and count', () => {
  const f = parseLoadFlags([]);
  assert.equal(f.url, 'http://127.0.0.1:8080');
  assert.equal(f.duration, 30);
  assert.equal(f['max-requests'], 100000);
  assert.equal(f.stream, false);
  assert.equal(f['api-key'], undefined);
  const g = parseLoadFlags(['--url', 'https://legal.example.cn/', '--duration', '5', '--connections', '16', '--api-key', 'sk-abc', '--stream']);
  assert.deepEqual([g.url, g.duration, g.connections, g['api-key'], g.stream], ['https://legal.example.cn', 5, 16, 'sk-abc', true]);
});

test('flags: garbage is refused with the flag named', () => {
  const cases: [string[], RegExp][] = [
    [['--duration', 'abc'], /^--duration expected a whole number/],
    [['--duration', '0'], /^--duration /],
    [['--duration', '99999'], /^--duration /],
    [['--duration', '-3'], /duration/],
    [['--connections', '1.5'], /^--connections expected a whole number/],
    [['--url', 'not a url'], /^--url is not a URL/],
    [['--url', 'ftp://127.0.0.1/'], /^--url must be http/],
    [['--url', 'http://127.0.0.1:8080/v1/chat'], /^--url must be the gateway base URL/],
    [['--url', 'http://user:pw@127.0.0.1:8080'], /^--url must not carry credentials/],
    [['--api-key', 'sk one'], /^--api-key must be printable ASCII/],
    [['--api-key', ''], /^--api-key is empty/],
    [['--connections', '10', '--max-requests', '5'], /--max-requests must be at least --connections/],
    [['--bogus'], /bogus/],
    [['positional'], /positional/i],
    [['--stream=yes'], /stream/],
  ];
  for (const [argv, want] of cases) {
    assert.throws(() => parseLoadFlags(argv), (err: Error) => want.test(err.message), argv.join(' '));
  }
});

test('the mix follows its weights, about one request in ten invalid', () => {
  const kinds = Object.keys(MIX) as RequestKind[];
  // A random() that walks evenly over [0, 1) visits each kind in proportion to its weight.
  const counts = new Map<RequestKind, number>();
  const n = 10000;
  for (let i = 0; i < n; i++) {
    const k = pickKind(() => (i + 0.5) / n);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const total = Object.values(MIX).reduce((a, b) => a + b, 0);
  for (const k of kinds) assert.equal(counts.get(k), (MIX[k] / total) * n, k);
  const invalid = kinds.filter((k) => buildRequest(k, { stream: false, maxTokens: 16, model: 'm' }).invalid);
  assert.equal(invalid.reduce((s, k) => s + MIX[k], 0) / total, 0.1);
  assert.equal(pickKind(() => 0.999999), kinds.at(-1));
});

test('requests: valid ones are JSON on the answer routes, streamed as asked; invalid ones are broken in one way each', () => {
  const opts = { stream: false, maxTokens: 32, model: 'chatglm3-6b' };
  for (const kind of Object.keys(MIX) as RequestKind[]) {
    const r = buildRequest(kind, opts, () => 0);
    assert.ok(['/v1/chat', '/v1/chat/completions'].includes(r.path), kind);
    if (kind === 'invalid-json') {
      assert.throws(() => JSON.parse(r.body));
      continue;
    }
    const body = JSON.parse(r.body) as { messages: { role: string; content: string }[]; max_tokens?: number; stream?: boolean; model?: string };
    if (!r.invalid) {
      assert.equal(body.messages.at(-1)!.role, 'user', kind);
      assert.equal(body.max_tokens, 32);
      assert.equal(body.stream, r.stream);
      assert.equal(r.stream, kind.endsWith('-stream'), kind);
      if (r.path === '/v1/chat/completions') assert.equal(body.model, 'chatglm3-6b');
    }
  }
  assert.ok(buildRequest('chat-long', opts).body.length > 3 * buildRequest('chat-short', opts, () => 0).body.length);
  assert.equal(buildRequest('chat-short', { ...opts, stream: true }).stream, true);
  assert.equal(buildRequest('completions', { ...opts, stream: true }).stream, true);
  assert.equal(buildRequest('invalid-max-tokens', { ...opts, stream: true }).stream, false);
});

test('answers are classified: worker, fallback, refused, limited, unavailable, wrong', () => {
  const valid = { invalid: false };
  const invalid = { invalid: true };
  assert.equal(classify(valid, 200, {}), 'ok');
  assert.equal(classify(valid, 200, { 'x-degraded': 'kb' }), 'degraded');
  assert.equal(classify(valid, 429, {}), 'rate_limited');
  assert.equal(classify(valid, 503, {}), 'unavailable');
  assert.equal(classify(valid, 500, {}), 'wrong');
  assert.equal(classify(valid, 400, {}), 'wrong');
  assert.equal(classify(valid, 401, {}), 'wrong');
  assert.equal(classify(invalid, 400, {}), 'refused');
  assert.equal(classify(invalid, 415, {}), 'refused');
  assert.equal(classify(invalid, 200, {}), 'wrong');
  assert.equal(classify(invalid, 502, {}), 'wrong');
  assert.equal(classify(invalid, 429, {}), 'rate_limited');
});

test('the report: degraded share of answers, a table with every number', () => {
  const outcomes = { ok: 30, degraded: 10, refused: 5, rate_limited: 2, unavailable: 1, wrong: 0 };
  assert.equal(degradedShare(outcomes), 0.25);
  assert.equal(degradedShare({ ...outcomes, ok: 0, degraded: 0 }), 0);
  const s: LoadSummary = {
    url: 'http://127.0.0.1:8080',
    durationSeconds: 2,
    connections: 4,
    requests: 48,
    rps: 24,
    latencyMs: { p50: 12, p90: 30, p99: 95, max: 120 },
    status: { '200': 40, '400': 5, '429': 2, '503': 1 },
    outcomes,
    kinds: {},
    degradedShare: 0.25,
    errors: 0,
    timeouts: 0,
  };
  const table = formatTable(s);
  for (const want of ['24.0', '12 / 30 / 95 / 120 ms', '200: 40, 400: 5, 429: 2, 503: 1', '30 / 10', '25.0%', '2 / 1']) assert.ok(table.includes(want), want);
  const widths = new Set(table.split('\n').map((l) => l.length));
  assert.equal(widths.size, 1, 'aligned columns');
});
