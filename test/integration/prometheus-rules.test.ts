/**
 * The Prometheus scrape config and alert rules: promtool accepts them, the rule unit tests pass,
 * and each alert has a unit test where it fires and one where it does not.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../helpers/paths.js';

const PROM_DIR = join(PROJECT_ROOT, 'docker/prometheus');

function promtool(...args: string[]) {
  const r = spawnSync('promtool', args, { cwd: PROM_DIR, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; expr: string; labels?: Record<string, string> }[] }[];
}
interface RuleTests {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

const rules = parse(readFileSync(join(PROM_DIR, 'rules/alerts.yml'), 'utf8')) as RuleFile;
const alerts = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r] : [])));

test('promtool accepts the scrape config, and it loads the rules', () => {
  const r = promtool('check', 'config', 'prometheus.yml');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /1 rule files found/);
  assert.match(r.out, new RegExp(`SUCCESS: ${alerts.length} rules found`));
});

test('promtool accepts the alert rules', () => {
  const r = promtool('check', 'rules', 'rules/alerts.yml');
  assert.equal(r.status, 0, r.out);
});

test('the rule unit tests pass', () => {
  const r = promtool('test', 'rules', 'rules.test.yml');
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /SUCCESS/);
});

test('the alerts the service needs are there, each with a severity and a summary', () => {
  const names = alerts.map((a) => a.alert);
  for (const want of [
    'GatewayBreakerOpen',
    'GatewayNoHealthyWorker',
    'GatewayHighErrorRatio',
    'GatewayTimeToFirstTokenSlow',
    'GatewayDegradedAnswersHigh',
    'GatewayDegradeForcedLong',
    'GatewayRateLimiterRedisOutage',
    'WorkerQueueNearFull',
    'WorkerKvCacheNearFull',
  ]) {
    assert.ok(names.includes(want), `missing alert ${want}`);
  }
  assert.equal(new Set(names).size, names.length, 'alert names repeat');
  for (const a of alerts) assert.ok(['critical', 'warning', 'info'].includes(a.labels?.severity ?? ''), `${a.alert} severity`);
});

test('every alert has a unit test where it fires and one where it stays quiet', () => {
  const specs = parse(readFileSync(join(PROM_DIR, 'rules.test.yml'), 'utf8')) as RuleTests;
  assert.deepEqual(specs.rule_files, ['rules/alerts.yml']);
  const cases = specs.tests.flatMap((t) => t.alert_rule_test ?? []);
  for (const a of alerts) {
    const mine = cases.filter((c) => c.alertname === a.alert);
    assert.ok(mine.some((c) => c.exp_alerts.length > 0), `${a.alert} never fires in rules.test.yml`);
    assert.ok(mine.some((c) => c.exp_alerts.length === 0), `${a.alert} is never shown quiet in rules.test.yml`);
  }
});

test('a broken rule is refused, so the checks above can fail', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rules-'));
  try {
    const good = join(dir, 'good.yml');
    const bad = join(dir, 'bad.yml');
    writeFileSync(good, 'groups:\n  - name: x\n    rules:\n      - alert: Fine\n        expr: up == 0\n');
    writeFileSync(bad, 'groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(rate(gateway_http_requests_total[5m]) > 1\n');
    assert.equal(promtool('check', 'rules', good).status, 0);
    const r = promtool('check', 'rules', bad);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /parse error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
