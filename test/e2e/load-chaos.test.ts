/**
 * `npm run load -- --local --chaos ...` end to end, at a small scale: the tool starts its own
 * Redis, two sim workers and a gateway, applies every fault, and must account for every request
 * (none lost), see no 5xx while the fallback is on, and see the service recover from each fault
 * within 5 s. Its HTML report is then opened in headless Chromium: no page error, no request.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LoadSummary } from '../../src/load/report.js';
import { launchChromium, watchedPage } from '../helpers/browser.js';
import { CLI_DIR, PROJECT_ROOT } from '../helpers/paths.js';

function load(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(CLI_DIR, 'load.js'), ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
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
