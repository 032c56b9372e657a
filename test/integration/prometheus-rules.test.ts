/**
 * The Prometheus scrape config and alert rules: promtool accepts them, the rule unit tests pass,
 * each alert has a unit test where it fires and one where it does not, and each carries its
 * runbook: a summary, a description and a link to its own subsection of the README's Runbook.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import GithubSlugger from 'github-slugger';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../helpers/paths.js';

const PROM_DIR = join(PROJECT_ROOT, 'docker/prometheus');

function promtool(...args: string[]) {
  const r = spawnSync('promtool', args, { cwd: PROM_DIR, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

interface RuleFile {
  groups: { name: string; rules: { alert?: string; expr: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[];
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
    'WorkerDown',
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

/** README headings as GitHub anchors them, each with the heading it belongs to and its section's text. */
function readmeSections(markdown: string): { anchor: string; level: number; title: string; body: string; parent: string | null }[] {
  const slugger = new GithubSlugger();
  const sections: { anchor: string; level: number; title: string; body: string; parent: string | null }[] = [];
  const open: string[] = [];
  let inFence = false;
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) inFence = !inFence;
    const m = inFence ? null : /^(#{1,6}) (.+)$/.exec(line);
    if (m) {
      const level = m[1]!.length;
      open.length = level - 1;
      sections.push({ anchor: slugger.slug(m[2]!), level, title: m[2]!, body: '', parent: open.filter(Boolean).at(-1) ?? null });
      open[level - 1] = m[2]!;
    } else if (sections.length > 0) {
      sections.at(-1)!.body += `${line}\n`;
    }
  }
  return sections;
}

test('every alert has a summary, a description and a runbook_url to its own subsection of the README runbook', () => {
  const sections = readmeSections(readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8'));
  const runbook = sections.filter((s) => s.parent === 'Runbook' && s.level === 3);
  assert.ok(runbook.length >= alerts.length, 'the README has a Runbook section with a subsection per alert');
  for (const a of alerts) {
    const ann = a.annotations ?? {};
    assert.ok((ann.summary ?? '').length > 10, `${a.alert}: summary`);
    assert.ok((ann.description ?? '').length > 40, `${a.alert}: description`);
    const m = /^README\.md#([a-z0-9-]+)$/.exec(ann.runbook_url ?? '');
    assert.ok(m, `${a.alert}: runbook_url is README.md#<anchor>, not ${ann.runbook_url}`);
    const section = runbook.find((s) => s.anchor === m[1]);
    assert.ok(section, `${a.alert}: README has no Runbook subsection with anchor #${m[1]}`);
    assert.equal(section.title, a.alert, `${a.alert}: the runbook subsection is named after the alert`);
    assert.ok(section.body.trim().length > 150, `${a.alert}: its runbook says what to do`);
  }
  const stale = runbook.filter((s) => !alerts.some((a) => a.alert === s.title)).map((s) => s.title);
  assert.deepEqual(stale, [], 'runbook subsections for alerts that do not exist');
  // Every in-README link to an anchor points at a heading that exists.
  const anchors = new Set(sections.map((s) => s.anchor));
  const text = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8');
  const broken = [...text.matchAll(/\]\(#([^)]+)\)/g)].map((x) => x[1]!).filter((x) => !anchors.has(x));
  assert.deepEqual(broken, [], 'README links to anchors that do not exist');
});

test('the anchors are GitHub\'s: the check above would catch a wrong one', () => {
  const sections = readmeSections('# A\n## Runbook\n### GatewayBreakerOpen\ntext\n```sh\n# not a heading\n```\n### Rate limits (`x`)\n### A\n');
  assert.deepEqual(
    sections.map((s) => [s.anchor, s.parent]),
    [
      ['a', null],
      ['runbook', 'A'],
      ['gatewaybreakeropen', 'Runbook'],
      ['rate-limits-x', 'Runbook'],
      ['a-1', 'Runbook'],
    ],
  );
  assert.match(sections[2]!.body, /not a heading/);
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
