/**
 * `npm run load` against a real gateway process (with a fake worker behind it): short runs,
 * bounded by time and by count, with the summary read from its JSON line.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import type { LoadSummary } from '../../src/load/report.js';
import { CLI_DIR } from '../helpers/paths.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';

const KEY = 'sk-load-test-0123456789';
const ADMIN = 'admin-token-for-the-load-test';

let fake: FakeWorker;
let gateway: GatewayProcess;

before(async () => {
  fake = await startFakeWorker({ tokenDelayMs: 2 });
  gateway = await startGatewayProcess({
    GATEWAY_WORKERS_URLS: fake.url,
    // The degrade flag stays in this process: the shared test Redis is not touched.
    GATEWAY_REDIS_URL: '',
    GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: sha256Hex(KEY), tenant: 'load', tier: 'pro' }]),
    GATEWAY_AUTH_ADMIN_TOKEN_SHA256: sha256Hex(ADMIN),
    GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '200',
  });
});

after(async () => {
  await gateway?.stop();
  await fake?.stop();
});

function load(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(CLI_DIR, 'load.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

function summaryOf(stdout: string): LoadSummary {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines.at(-1)!) as LoadSummary;
}

test('a timed run: a mixed workload, every answer right, invalid requests refused, a table and JSON', async () => {
  const r = await load(['--url', gateway.url, '--duration', '2', '--connections', '4', '--api-key', KEY, '--max-tokens', '8']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = summaryOf(r.stdout);
  assert.ok(s.durationSeconds >= 1.5 && s.durationSeconds < 10, `ran ${s.durationSeconds} s`);
  assert.ok(s.requests >= 20, `${s.requests} requests`);
  assert.equal(s.outcomes.wrong, 0);
  assert.ok(s.outcomes.ok > 0 && s.outcomes.refused > 0);
  assert.equal(s.outcomes.degraded, 0);
  assert.equal(s.degradedShare, 0);
  // A rate limit in front (429) is a right answer too; nothing else is expected here.
  assert.equal((s.status['200'] ?? 0) + (s.status['400'] ?? 0) + (s.status['429'] ?? 0), s.requests);
  assert.equal(s.outcomes.ok + s.outcomes.refused + s.outcomes.rate_limited, s.requests);
  assert.ok(s.latencyMs.p99 >= s.latencyMs.p50);
  assert.ok(Object.keys(s.kinds).length >= 6, 'the mix has many kinds');
  assert.match(r.stdout, /\| requests\/s +\| \d+\.\d/);
  assert.ok(fake.url && (await fake.stats()).completed > 0, 'the worker answered');
});

test('a counted run stops at --max-requests; with degrade forced every answer is a fallback answer', async (ctx) => {
  const res = await fetch(`${gateway.url}/admin/degrade`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ mode: 'forced', source: 'kb' }),
  });
  assert.equal(res.status, 200, await res.text());
  ctx.after(async () => {
    const back = await fetch(`${gateway.url}/admin/degrade`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ mode: 'auto' }),
  });
  await back.text();
  });
  const r = await load(['--url', gateway.url, '--duration', '60', '--connections', '2', '--max-requests', '30', '--api-key', KEY, '--stream']);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = summaryOf(r.stdout);
  assert.ok(s.requests <= 30 && s.requests >= 20, `${s.requests} requests`);
  assert.ok(s.durationSeconds < 30, 'stopped by count, not time');
  assert.ok(s.outcomes.degraded > 0);
  assert.equal(s.outcomes.ok, 0);
  assert.equal(s.degradedShare, 1);
});

test('without the API key every valid request is refused: the run counts wrong answers and exits 1', async () => {
  const r = await load(['--url', gateway.url, '--duration', '30', '--connections', '2', '--max-requests', '10']);
  assert.equal(r.code, 1);
  const s = summaryOf(r.stdout);
  assert.ok(s.status['401']! > 0);
  assert.ok(s.outcomes.wrong > 0);
  assert.equal(s.outcomes.ok, 0);
});

test('bad flags: exit 2 with the flag named and the usage, nothing sent', async () => {
  const before = (await fake.stats()).requests;
  const r = await load(['--url', 'http://127.0.0.1:1/v1/chat', '--duration', '1']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^--url must be the gateway base URL/);
  assert.match(r.stderr, /usage: npm run load/);
  assert.equal(r.stdout, '');
  assert.equal((await fake.stats()).requests, before);
});
