/**
 * `npm run load -- --local --chaos ...` end to end, at a small scale: the tool starts its own
 * Redis, two sim workers and a gateway, applies every fault, and must account for every request
 * (none lost), see no 5xx while the fallback is on, and see the service recover from each fault
 * within 5 s. Its HTML report is then opened in headless Chromium: no page error, no request.
 * And Ctrl-C during a run stops every process the tool started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadSummary } from '../../src/load/report.js';
import { launchChromium, watchedPage } from '../helpers/browser.js';
import { CLI_DIR, PROJECT_ROOT } from '../helpers/paths.js';

function load(args: string[], onStderr?: (text: string, child: ChildProcess) => void): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(CLI_DIR, 'load.js'), ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr, child);
    });
    child.on('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

test('a chaos run on the local stack: nothing lost, no 5xx, every fault recovered within 5 s; its report renders', async (ctx) => {
  const dir = mkdtempSync(join(tmpdir(), 'load-chaos-'));
  ctx.after(() => rmSync(dir, { recursive: true, force: true }));
  const json = join(dir, 'run.json');
  const html = join(dir, 'run.html');
  const r = await load([
    '--local',
    '--rate', '20',
    '--duration', '12',
    '--max-tokens', '16',
    '--chaos', 'kill-worker@2,stop-redis@4,start-redis@6,degrade-forced@8,degrade-auto@10',
    '--json', json,
    '--report', html,
  ]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const s = JSON.parse(readFileSync(json, 'utf8')) as LoadSummary;
  const q = s.requests;
  assert.equal(q.lost, 0);
  assert.equal(q.answered + q.fallback + q.rate_limited + q.refused + q.failed, q.sent);
  assert.ok(q.sent > 150, `${q.sent} sent`);
  const fivexx = Object.entries(s.status).filter(([code]) => code.startsWith('5') || code === 'transport_error');
  assert.deepEqual(fivexx, [], 'no 5xx and no transport error while the fallback is on');
  assert.equal(q.failed, s.broken_streams, 'the only failures are streams cut when their worker was killed');
  assert.equal(s.wrong, 0);
  assert.ok(q.fallback > 0, 'the forced window was answered by the fallback');
  assert.deepEqual(
    s.chaos.map((c) => c.action),
    ['kill-worker', 'stop-redis', 'start-redis', 'degrade-forced', 'degrade-auto'],
  );
  for (const c of s.chaos) {
    assert.doesNotMatch(c.done, /^failed/, c.action);
    assert.ok(c.recovered_s !== null && c.recovered_s <= 5, `${c.action} recovered in ${c.recovered_s} s`);
  }
  for (const k of ['ttft', 'itl', 'e2e'] as const) assert.ok(s.latency_ms[k].p50 !== null && s.latency_ms[k].p99! >= s.latency_ms[k].p50!, k);
  assert.match(r.stdout, /\| kill-worker +\| SIGKILL worker/);

  const browser = await launchChromium();
  ctx.after(() => browser.close());
  const page = await watchedPage(browser, 'http://127.0.0.1:9');
  await page.page.setContent(readFileSync(html, 'utf8'), { waitUntil: 'load' });
  assert.deepEqual(page.pageErrors, []);
  assert.deepEqual(page.consoleErrors, []);
  assert.deepEqual(page.requests, [], 'the page asks for nothing');
  assert.equal(await page.page.locator('svg').count(), 3);
  assert.equal(await page.page.locator('svg .chaos').count(), 15, 'five events marked on each chart');
  const box = await page.page.locator('svg').first().boundingBox();
  assert.ok(box && box.width > 500 && box.height > 150, 'the charts are drawn at their size');
});

test('Ctrl-C during a local run stops the gateway, the workers and Redis it started, exit 130', async () => {
  let interrupted = false;
  const r = await load(['--local', '--rate', '5', '--duration', '60'], (text, child) => {
    if (!interrupted && /, 5 requests\/s/.test(text)) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  assert.ok(interrupted, r.stderr);
  assert.equal(r.code, 130, r.stderr);
  const gateway = /gateway on (http:\/\/127\.0\.0\.1:\d+)/.exec(r.stderr)![1]!;
  const [, redisPort, workerPorts] = /redis-server on (\d+), 2 sim worker\(s\) on ([\d, ]+)/.exec(r.stderr)!;
  assert.equal(await answers(`${gateway}/healthz`), false, 'the gateway is gone');
  for (const p of workerPorts!.split(', ')) assert.equal(await answers(`http://127.0.0.1:${p.trim()}/healthz`), false, `worker ${p} is gone`);
  const redisUp = await new Promise<boolean>((resolve) => {
    const sock = createConnection({ port: Number(redisPort), host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
  assert.equal(redisUp, false, 'redis-server is gone');
});
