/** The load test's pieces: flags (garbage in, one clear error out), the request mix, outcomes, arrivals, percentiles, the reports. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLoadFlags } from '../../../src/load/flags.js';
import { arrivalTimes, gamma, seededRandom } from '../../../src/load/arrivals.js';
import { MIX, buildRequest, classify, pickKind, type RequestKind } from '../../../src/load/workload.js';
import { formatTable, percentiles, type LoadSummary } from '../../../src/load/report.js';
import { renderHtmlReport } from '../../../src/load/html-report.js';

test('flags: defaults aim at the local gateway, closed loop, bounded in time and count', () => {
  const f = parseLoadFlags([]);
  assert.equal(f.url, 'http://127.0.0.1:8080');
  assert.deepEqual(f.arrivals, { kind: 'closed', connections: 8 });
  assert.equal(f.durationS, 30);
  assert.equal(f.maxRequests, 100000);
  assert.equal(f.drainS, 30);
  assert.equal(f.timeoutS, 120);
  assert.equal(f.maxTokens, 64);
  assert.deepEqual(f.slo, { ttft: 800, tpot: 120 });
  assert.equal(f.local, null);
  assert.equal(f.stream, false);
  assert.equal(f.apiKey, undefined);
  const g = parseLoadFlags(['--url', 'https://legal.example.cn/', '--rate', '12.5', '--burstiness', '0.5', '--slo', 'ttft=500,e2e=3000', '--stream']);
  assert.deepEqual(g.arrivals, { kind: 'open', rates: [12.5], burstiness: 0.5 });
  assert.equal(g.url, 'https://legal.example.cn');
  assert.deepEqual(g.slo, { ttft: 500, e2e: 3000 });
  assert.deepEqual(parseLoadFlags(['--sweep', '10,20,40']).arrivals, { kind: 'open', rates: [10, 20, 40], burstiness: 1 });
  const l = parseLoadFlags(['--local', '--rate', '40', '--duration', '45', '--chaos', 'stop-redis@20,kill-worker@10']);
  assert.deepEqual(l.local, {
    workers: 2,
    engine: 'sim',
    nice: 10,
    chaos: [
      { action: 'kill-worker', atS: 10 },
      { action: 'stop-redis', atS: 20 },
    ],
  });
});

test('flags: garbage is refused with the flag named', () => {
  const cases: [string[], RegExp][] = [
    [['--duration', 'abc'], /^--duration expected a positive number/],
    [['--duration', '0'], /^--duration must be more than 0/],
    [['--duration', '99999'], /^--duration must be at most 3600/],
    [['--connections', '1.5'], /^--connections expected a whole number/],
    [['--rate', '-3'], /rate/],
    [['--rate', 'fast'], /^--rate expected a positive number/],
    [['--rate', '0'], /^--rate must be more than 0/],
    [['--burstiness', '1'], /^--burstiness needs --rate or --sweep/],
    [['--sweep', '10,x'], /^--sweep "x" is not a rate/],
    [['--sweep', '10,,20'], /^--sweep "" is not a rate/],
    [['--rate', '5', '--sweep', '1,2'], /^--sweep cannot be combined with --rate/],
    [['--slo', 'ttft'], /^--slo "ttft" is not KEY=MS/],
    [['--slo', 'speed=3'], /^--slo "speed=3" is not KEY=MS/],
    [['--slo', 'ttft=0'], /^--slo "ttft=0"/],
    [['--url', 'not a url'], /^--url is not a URL/],
    [['--url', 'ftp://127.0.0.1/'], /^--url must be http/],
    [['--url', 'http://127.0.0.1:8080/v1/chat'], /^--url must be the gateway base URL/],
    [['--url', 'http://user:pw@127.0.0.1:8080'], /^--url must not carry credentials/],
    [['--url', 'http://127.0.0.1:8080', '--local'], /^--url cannot be combined with --local/],
    [['--workers', '2'], /^--workers needs --local/],
    [['--local', '--workers', '0'], /^--workers must be at least 1/],
    [['--local', '--engine', 'gpu'], /^--engine must be sim or onnx/],
    [['--local', '--nice', '20'], /^--nice must be at most 19/],
    [['--local', '--chaos', 'kill-worker'], /^--chaos "kill-worker" is not ACTION@SECONDS/],
    [['--local', '--chaos', 'reboot@3'], /^--chaos "reboot" is not an action/],
    [['--local', '--chaos', 'kill-worker@40', '--duration', '30'], /^--chaos kill-worker@40 is not before the end of the run \(30 s\)/],
    [['--chaos', 'kill-worker@1'], /^--chaos needs --local/],
    [['--report', 'out.txt'], /^--report must name an \.html file/],
    [['--api-key', 'sk one'], /^--api-key must be printable ASCII/],
    [['--api-key', ''], /^--api-key is empty/],
    [['--connections', '10', '--max-requests', '5'], /--max-requests must be at least --connections/],
    [['--bogus'], /bogus/],
    [['positional'], /positional/i],
    [['--stream=yes'], /stream/],
  ];
  for (const [argv, want] of cases) {
    assert.throws(() => parseLoadFlags(argv), (err: Error) => want.test(err.message), `${argv.join(' ')}`);
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
});

test('requests: valid ones on the answer routes, streamed as asked (OpenAI streams ask for usage); a dataset replaces the questions', () => {
  const opts = { stream: false, maxTokens: 32, model: 'chatglm3-6b' };
  for (const kind of Object.keys(MIX) as RequestKind[]) {
    const r = buildRequest(kind, opts, () => 0);
    assert.ok(['/v1/chat', '/v1/chat/completions'].includes(r.path), kind);
    if (kind === 'invalid-json') {
      assert.throws(() => JSON.parse(r.body));
      continue;
    }
    const body = JSON.parse(r.body) as { messages: { role: string }[]; max_tokens?: number; stream?: boolean; stream_options?: unknown };
    if (!r.invalid) {
      assert.equal(body.messages.at(-1)!.role, 'user', kind);
      assert.equal(body.max_tokens, 32);
      assert.equal(body.stream, r.stream);
      assert.equal(r.stream, kind.endsWith('-stream'), kind);
      assert.equal(body.stream_options !== undefined, kind === 'completions-stream', kind);
    }
  }
  const prompts = [[{ role: 'user' as const, content: '数据集里的问题' }]];
  const d = JSON.parse(buildRequest('chat-short', { ...opts, prompts }).body) as { messages: unknown };
  assert.deepEqual(d.messages, prompts[0]);
  assert.equal(buildRequest('invalid-max-tokens', { ...opts, prompts }).invalid, true, 'the garbage share stays');
});

test('outcomes: worker, fallback, rate-limited, refused, failed; wrong answers flagged', () => {
  const valid = { invalid: false };
  const bad = { invalid: true };
  assert.deepEqual(classify(valid, 200, false), { outcome: 'answered', wrong: false });
  assert.deepEqual(classify(valid, 200, true), { outcome: 'fallback', wrong: false });
  assert.deepEqual(classify(valid, 429, false), { outcome: 'rate_limited', wrong: false });
  assert.deepEqual(classify(valid, 503, false), { outcome: 'failed', wrong: false });
  assert.deepEqual(classify(valid, 0, false), { outcome: 'failed', wrong: false });
  assert.deepEqual(classify(valid, 200, false, true), { outcome: 'failed', wrong: false }, 'a broken stream');
  assert.deepEqual(classify(valid, 401, false), { outcome: 'refused', wrong: true });
  assert.deepEqual(classify(bad, 400, false), { outcome: 'refused', wrong: false });
  assert.deepEqual(classify(bad, 200, false), { outcome: 'answered', wrong: true });
  assert.deepEqual(classify(bad, 429, false), { outcome: 'rate_limited', wrong: false });
});

test('arrivals: gamma gaps have mean 1/R and variance shape·scale²; a seed repeats the schedule', () => {
  for (const shape of [0.5, 1, 4]) {
    const r = seededRandom(3);
    const scale = 2;
    const n = 40000;
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const v = gamma(shape, scale, r);
      sum += v;
      sq += v * v;
    }
    const mean = sum / n;
    const variance = sq / n - mean * mean;
    assert.ok(Math.abs(mean - shape * scale) / (shape * scale) < 0.03, `shape ${shape}: mean ${mean}`);
    assert.ok(Math.abs(variance - shape * scale * scale) / (shape * scale * scale) < 0.08, `shape ${shape}: variance ${variance}`);
  }
  const a = arrivalTimes(50, 1, 10_000, 1e6, seededRandom(9));
  assert.ok(Math.abs(a.length - 500) < 70, `${a.length} arrivals in 10 s at 50/s`);
  assert.equal(a[0], 0);
  assert.ok(a.every((t, i) => t < 10_000 && (i === 0 || t >= a[i - 1]!)));
  assert.deepEqual(arrivalTimes(50, 1, 10_000, 1e6, seededRandom(9)), a);
  assert.equal(arrivalTimes(50, 1, 10_000, 7, seededRandom(9)).length, 7, 'the request budget bounds it');
});

test('percentiles are nearest-rank and ignore missing values', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.deepEqual(percentiles([...v, Number.NaN]), { p50: 50, p90: 90, p99: 99, max: 100 });
  assert.deepEqual(percentiles([]), { p50: null, p90: null, p99: null, max: null });
});

function summary(): LoadSummary {
  const p = { p50: 10, p90: 20, p99: 30, max: 40 };
  return {
    target: 'http://127.0.0.1:8080',
    arrivals: 'open loop, 40 requests/s, burstiness 1',
    started_at: '2026-01-01T00:00:00.000Z',
    duration_s: 2,
    requests: { sent: 50, answered: 30, fallback: 10, rate_limited: 2, refused: 5, failed: 1, lost: 2 },
    wrong: 0,
    broken_streams: 1,
    status: { '200': 41, '400': 5, '429': 2 },
    kinds: {},
    latency_ms: { ttft: p, itl: p, tpot: p, e2e: p },
    requests_per_s: 24,
    output_tokens_per_s: 100,
    goodput_rps: 20,
    slo_ms: { ttft: 800 },
    schedule_lag_ms: { p50: 0.1, p90: 0.5, p99: 1.2, max: 3 },
    generator_nice: -10,
    stages: [],
    chaos: [{ at_s: 1, action: 'kill-worker', done: 'SIGKILL <worker>', recovered_s: 0.5, applied_ms: 1002, recovered_when: 'healthy' }],
    transport_errors: {},
    timeline: [0, 1, 2].map((t) => ({ t, sent: 20, answered: 10, fallback: 1, failed: 0, rate_limited: 0, output_tokens: 90, ttft_p50_ms: 5, e2e_p50_ms: 9, e2e_p99_ms: 12, lag_max_ms: 1 })),
  };
}

test('the table has every count, lost flagged, the chaos events; the HTML escapes what it shows', () => {
  const table = formatTable(summary());
  for (const want of ['30 / 10', '2 / 5 / 1', '2  <-- requests without an outcome', '24.0', '20.0 requests/s', '10 / 20 / 30 ms', '0.1 / 1.2 / 3 ms (generator at nice -10)', 'kill-worker', '0.50']) {
    assert.ok(table.includes(want), want);
  }
  const html = renderHtmlReport(summary());
  assert.ok(html.includes('SIGKILL &#60;worker&#62;'));
  assert.ok(!html.includes('<worker>'));
  assert.equal((html.match(/<svg /g) ?? []).length, 3);
  assert.ok(!/https?:\/\/(?!127\.0\.0\.1:8080)/.test(html), 'no outside address');
});
