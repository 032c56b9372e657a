/**
 * `npm run load` as a real process: against a fake upstream that gives every outcome (the
 * accounting must match what it answered, request for request), against a real gateway process
 * with a fake worker behind it (closed and open loop, a dataset, the JSON and HTML files), and
 * with bad flags and files.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import type { LoadSummary } from '../../src/load/report.js';
import { CLI_DIR } from '../helpers/paths.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { startFakeGateway } from '../helpers/fake-gateway.js';

const KEY = 'sk-load-test-0123456789';

let fake: FakeWorker;
let gateway: GatewayProcess;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'load-cli-'));
  fake = await startFakeWorker({ tokenDelayMs: 2 });
  gateway = await startGatewayProcess({
    GATEWAY_WORKERS_URLS: fake.url,
    GATEWAY_REDIS_URL: '',
    GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: sha256Hex(KEY), tenant: 'load', tier: 'pro' }]),
    GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '200',
  });
});

after(async () => {
  await gateway?.stop();
  await fake?.stop();
  rmSync(dir, { recursive: true, force: true });
});

export function load(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(CLI_DIR, 'load.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export function summaryOf(stdout: string): LoadSummary {
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as LoadSummary;
}

test('every request ends in exactly one outcome, and the counts are what the upstream answered', async () => {
  const up = await startFakeGateway(['worker', 'degraded', 'rate_limited', 'server_error', 'drop', 'broken_stream', 'worker']);
  try {
    const r = await load(['--url', up.url, '--rate', '150', '--duration', '2', '--drain', '5', '--seed', '7']);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r.stdout);
    const q = s.requests;
    const t = up.tally;
    assert.ok(q.sent > 200, `${q.sent} sent`);
    assert.equal(q.lost, 0);
    assert.equal(q.answered + q.fallback + q.rate_limited + q.refused + q.failed + q.lost, q.sent, 'one outcome each');
    assert.equal(q.answered, t.worker);
    assert.equal(q.fallback, t.degraded);
    assert.equal(q.rate_limited, t.rate_limited);
    assert.equal(q.refused, t.invalid);
    assert.equal(q.failed, t.server_error + t.drop + t.broken_stream);
    for (const k of ['answered', 'fallback', 'rate_limited', 'refused', 'failed'] as const) assert.ok(q[k] > 0, k);
    assert.equal(s.wrong, 0);
    assert.equal(s.status['429'], t.rate_limited);
    assert.equal(s.status['400'], t.invalid);
    assert.equal(s.status['500'], t.server_error);
    assert.equal(s.status.transport_error, t.drop, 'a dropped connection is a transport error');
    assert.ok(s.broken_streams > 0 && s.broken_streams <= t.broken_stream, 'a stream cut after its 200 is failed, with status 200');
    assert.equal(Object.values(s.status).reduce((a, b) => a + b, 0), q.sent);
    assert.ok(s.latency_ms.ttft.p50! > 0 && s.latency_ms.itl.p50! > 0 && s.latency_ms.e2e.p99! >= s.latency_ms.e2e.p50!);
    assert.ok(s.output_tokens_per_s > 0);
    assert.ok(s.schedule_lag_ms.p99 !== null);
    assert.match(r.stdout, /\| answered \(worker \/ fallback\) +\| \d+ \/ \d+/);
  } finally {
    await up.close();
  }
});

test('a request without an outcome when the run ends is lost: counted, reported, exit 1', async () => {
  const up = await startFakeGateway(['worker', 'hang', 'worker', 'worker']);
  try {
    const started = Date.now();
    const r = await load(['--url', up.url, '--rate', '40', '--duration', '1', '--drain', '1', '--max-tokens', '8']);
    assert.ok(Date.now() - started < 15_000, 'the run ended by itself');
    assert.equal(r.code, 1);
    const s = summaryOf(r.stdout);
    assert.equal(s.requests.lost, up.tally.hang);
    assert.ok(s.requests.lost > 0);
    assert.equal(s.requests.answered + s.requests.refused + s.requests.lost, s.requests.sent);
    assert.match(r.stdout, /lost \(no outcome at the end\) +\| \d+ +<-- requests without an outcome/);
    assert.match(r.stderr, /requests had no outcome when the run ended \(lost\)/);
    // Closed loop: a loop whose request hangs does not hold the run past its time either.
    const closedStart = Date.now();
    const c = await load(['--url', up.url, '--connections', '4', '--duration', '1', '--drain', '1', '--max-tokens', '8']);
    assert.ok(Date.now() - closedStart < 15_000, 'the closed loop ended by itself');
    assert.equal(c.code, 1);
    const cs = summaryOf(c.stdout);
    assert.ok(cs.requests.lost > 0 && cs.requests.lost <= 4, `${cs.requests.lost} lost`);
    assert.equal(cs.requests.answered + cs.requests.refused + cs.requests.lost, cs.requests.sent);
  } finally {
    await up.close();
  }
});

test('through a real gateway: a closed-loop run, every answer right, JSON and HTML written', async () => {
  const json = join(dir, 'closed.json');
  const html = join(dir, 'closed.html');
  const r = await load(['--url', gateway.url, '--connections', '4', '--duration', '2', '--api-key', KEY, '--max-tokens', '8', '--json', json, '--report', html]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = JSON.parse(readFileSync(json, 'utf8')) as LoadSummary;
  assert.deepEqual(s.requests, summaryOf(r.stdout).requests);
  assert.ok(s.requests.sent >= 20, `${s.requests.sent} requests`);
  assert.equal(s.wrong, 0);
  assert.equal(s.requests.failed + s.requests.lost + s.requests.fallback, 0);
  assert.ok(s.requests.answered > 0 && s.requests.refused > 0);
  assert.ok(Object.keys(s.kinds).length >= 6, 'the mix has many kinds');
  assert.equal(s.schedule_lag_ms.p99, null, 'a closed loop has no schedule');
  assert.ok(readFileSync(html, 'utf8').includes('<svg'));
});

test('--dataset: the conversations of a finetune_demo file are what is asked', async () => {
  const data = join(dir, 'train.json');
  const question = '劳动合同到期不续签有经济补偿吗？';
  writeFileSync(data, `${JSON.stringify({ conversations: [{ role: 'user', content: question }, { role: 'assistant', content: '有。' }] })}\nnot json\n`);
  const r = await load(['--url', gateway.url, '--rate', '20', '--duration', '1', '--api-key', KEY, '--dataset', data, '--max-tokens', '4']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /1 lines skipped/);
  const last = (await fake.stats()).last as { messages?: { content: string }[] } | null;
  assert.equal(last?.messages?.at(-1)?.content, question);
  assert.equal(summaryOf(r.stdout).requests.lost, 0);
});

test('bad flags and files: exit 2 with the flag named, nothing sent', async () => {
  const before = (await fake.stats()).requests;
  const cases: [string[], RegExp][] = [
    [['--url', 'http://127.0.0.1:1/v1/chat'], /^--url must be the gateway base URL/],
    [['--rate', '10', '--connections', '2'], /^--rate cannot be combined with --connections/],
    [['--chaos', 'kill-worker@3'], /^--chaos needs --local/],
    [['--local', '--chaos', 'kill-worker@99', '--duration', '5'], /^--chaos kill-worker@99 is not before the end of the run/],
    [['--dataset', join(dir, 'missing.jsonl'), '--url', gateway.url], /^--dataset .*missing\.jsonl/],
  ];
  for (const [args, want] of cases) {
    const r = await load(args);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, want, args.join(' '));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(r.stdout, '');
  }
  assert.equal((await fake.stats()).requests, before);
});
