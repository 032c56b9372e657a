/**
 * The dashboards and alert rules of docker/ against a live Prometheus, as an operator meets them:
 * Debian's `prometheus` scrapes a real gateway process and a real worker process (the golden
 * tiny model) every second, with the project's rules loaded. Before any traffic, every series a
 * panel or a rule names must already be there (the first scrape); after a little traffic of
 * each kind (plain, streamed, invalid, rate-limited, degraded) every panel query must give data,
 * every rule must evaluate, every label a query groups, matches or shows must be on the live
 * series, and no series may have been born by the traffic unless one of its labels is open.
 * Then alerts fire for real: the worker killed, and Redis (a private redis-server) stopped.
 *
 * Everything is read from docker/grafana/dashboards/*.json and docker/prometheus/rules/, never
 * from a list here, so a panel or rule added later is held to the same checks.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, stringify } from 'yaml';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { freePort, sleep } from '../../src/shared/net.js';
import { KB_FIXTURE } from '../helpers/gateway.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { labelValuesQuery, legendLabels, panelQueries, readDashboards, substitute, type Dashboard, type GrafanaVariable, type PanelQuery } from '../helpers/grafana.js';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { startPrometheus, type PromAlert, type Prometheus } from '../helpers/prometheus.js';
import { promtoolCheckMetrics } from '../helpers/promtool.js';
import { analyse, unitMismatch } from '../helpers/promql.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';
import { exportTinyModel, startWorker, type TinyModel, type WorkerProcess } from '../helpers/worker-process.js';

const DOCKER = join(PROJECT_ROOT, 'docker');
const RULES_FILE = join(DOCKER, 'prometheus/rules/alerts.yml');

/** Scrape and rule evaluation interval: ten times the compose stack's, so that alerts move within seconds. */
const INTERVAL_S = 1;
/**
 * What the rules' `for` becomes here. Their real durations (1 to 30 minutes) are how long an
 * operator waits before being paged, and promtool's unit tests (rules.test.yml) hold the rules to
 * them; here only the `for` of each rule is rewritten, to 3 s, long enough for a pending phase
 * the test can see (three evaluations) and short enough to fire within the test. The expression,
 * labels and annotations are the project's own.
 */
const FOR_S = 3;
/**
 * `$__rate_interval` as Grafana computes it is at least four scrape intervals; 15 s also holds
 * the samples from before the traffic when the machine is busy and scrapes come late.
 */
const INTERVALS = { rate: '15s', interval: `${INTERVAL_S}s`, range: '5m' };

/** Labels whose values cannot be known in advance, so their series appear as they are used. */
const OPEN_LABELS: Record<string, string> = {
  worker: "a worker's address (workers come and go)",
  provider: 'the execution provider the engine ended up on',
  requested: 'the execution provider configured',
};

const KEYS = { steady: 'sk-steady-0123456789', tight: 'sk-tight-0123456789' };
const ADMIN_TOKEN = 'admin-token-for-the-monitoring-test';
const TIERS = {
  anonymous: { requests: { perMinute: 10, burst: 5 }, tokens: { perMinute: 10_000, burst: 10_000 } },
  pro: { requests: { perMinute: 60_000, burst: 10_000 }, tokens: { perMinute: 10_000_000, burst: 1_000_000 } },
  tight: { requests: { perMinute: 1, burst: 2 }, tokens: { perMinute: 100_000, burst: 100_000 } },
};

interface Query {
  where: string;
  expr: string;
  panel?: PanelQuery;
}

const dashboards = readDashboards(join(DOCKER, 'grafana/dashboards'));
const rules = (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { name: string; rules: { alert?: string; record?: string; expr: string; for?: string }[] }[] }).groups.flatMap((g) => g.rules);

let model: TinyModel;
let redis: PrivateRedis;
let worker: WorkerProcess;
let workerPort: number;
let gateway: GatewayProcess;
let prom: Prometheus;
let tmp: string;
let startedAt: number;
let panels: Query[] = [];
const ruleQueries: Query[] = rules.map((r) => ({ where: `rule ${r.alert ?? r.record}`, expr: r.expr }));
/** Series of our metrics at the first scrape, before any traffic. */
let firstSeries: Set<string>;
const phases: [string, number][] = [];
const phase = (name: string) => phases.push([name, performance.now()]);

const workerEnv = () => ({ WORKER_MODEL_DIR: model.modelDir, WORKER_ADAPTERS_DIR: join(model.root, 'no-adapters'), WORKER_DEMO_MODEL: 'off' });
const hostPort = (url: string) => new URL(url).host;
const seriesKey = (m: Record<string, string>) => JSON.stringify(Object.entries(m).sort(([a], [b]) => a.localeCompare(b)));

/** Template variables: a query variable's values from the live Prometheus, others from the dashboard. */
async function variableValues(v: GrafanaVariable): Promise<string[]> {
  if (v.type === 'query') {
    const q = labelValuesQuery(v);
    if (!q) throw new Error(`variable $${v.name}: only label_values(...) queries are understood here`);
    const series = await prom.series(q.metric ?? `{${q.label}=~".+"}`, startedAt / 1000);
    return [...new Set(series.map((s) => s[q.label]).filter((x): x is string => x !== undefined))].sort();
  }
  const current = v.current?.value;
  if (current !== undefined && current !== '$__all') return [current].flat();
  const options = (v.options ?? []).map((o) => o.value).filter((x) => x !== '$__all');
  if (options.length) return options;
  return typeof v.query === 'string' ? v.query.split(',').map((s) => s.trim()) : [];
}

async function dashboardQueries(ds: { file: string; json: Dashboard }[] = dashboards): Promise<Query[]> {
  const out: Query[] = [];
  for (const q of panelQueries(ds)) out.push({ where: q.where, expr: await substitute(q.target.expr, q.dashboard, INTERVALS, variableValues), panel: q });
  return out;
}

async function waitForScrapes(n: number): Promise<void> {
  const last = async () => new Map((await prom.targets()).map((t) => [t.labels.job!, t.lastScrape]));
  const start = await last();
  const seen = new Map([...start.keys()].map((k) => [k, 0]));
  let prev = start;
  const deadline = Date.now() + (n + 10) * INTERVAL_S * 1000;
  while ([...seen.values()].some((c) => c < n)) {
    assert.ok(Date.now() < deadline, `Prometheus did not scrape ${n} times: ${JSON.stringify(await prom.targets())}`);
    await sleep(100);
    const now = await last();
    for (const [job, at] of now) if (at !== prev.get(job)) seen.set(job, (seen.get(job) ?? 0) + 1);
    prev = now;
  }
}

// --- The checks, each a list of problems (empty: fine); the last test shows each can fail. ---

/**
 * Selectors that match no series, and matcher labels no series of the metric has. Series are
 * read through the series API over the whole run (so far), which a late or failed scrape on a
 * busy machine does not hide the way an instant query's staleness would.
 */
async function missingSeries(queries: Query[]): Promise<string[]> {
  const problems: string[] = [];
  for (const q of queries) {
    for (const s of analyse(q.expr).selectors) {
      const found = await prom.series(s.text, startedAt / 1000);
      if (found.length === 0) {
        problems.push(`${q.where}: ${s.text} matches no series`);
        continue;
      }
      for (const m of s.matchers) {
        if (m.label === '__name__' || found.some((r) => r[m.label] !== undefined)) continue;
        // `!=` and `!~` (and `=~` matching "") also match series without the label: it must exist.
        problems.push(`${q.where}: ${s.text} matches on label ${m.label}, which no series of it has`);
      }
    }
  }
  return problems;
}

/** Labels in by/without/on/ignoring that none of the series they group carry. */
async function missingGroupingLabels(queries: Query[]): Promise<string[]> {
  const problems: string[] = [];
  for (const q of queries) {
    for (const g of analyse(q.expr).groupings) {
      const series = (await Promise.all(g.selectors.map((s) => prom.series(s.text, startedAt / 1000)))).flat();
      // No series at all is missingSeries' finding; here, labels of series that exist.
      if (series.length === 0) continue;
      for (const label of g.labels) {
        if (!series.some((s) => s[label] !== undefined)) problems.push(`${q.where}: ${g.clause} (${label}) but no series of ${g.selectors.map((s) => s.text).join(', ')} has ${label}`);
      }
    }
  }
  return problems;
}

/** Panel queries that fail, give no data ("No data" in Grafana) or lack a label their legend shows. */
async function panelDataProblems(queries: Query[]): Promise<string[]> {
  const problems: string[] = [];
  for (const q of queries) {
    let result;
    try {
      ({ result } = await prom.query(q.expr));
    } catch (err) {
      problems.push(`${q.where}: ${(err as Error).message}`);
      continue;
    }
    if (result.length === 0) {
      problems.push(`${q.where}: no data for ${q.expr}`);
      continue;
    }
    for (const label of legendLabels(q.panel?.target.legendFormat)) {
      const without = result.filter((r) => r.metric[label] === undefined);
      if (without.length) problems.push(`${q.where}: the legend shows {{${label}}}, missing on ${without.length} of ${result.length} results`);
    }
  }
  return problems;
}

/** Panels without a unit, or whose unit does not fit the values a query gives. */
function unitProblems(queries: Query[]): string[] {
  const problems: string[] = [];
  for (const q of queries) {
    if (!q.panel) continue;
    if (!q.panel.unit) {
      problems.push(`${q.where}: no unit (fieldConfig.defaults.unit)`);
      continue;
    }
    const why = unitMismatch(q.panel.unit, analyse(q.expr).kind);
    if (why) problems.push(`${q.where}: ${why}`);
  }
  return problems;
}

/** Series that exist now but not at the first scrape and carry no open label: born at their first event. */
function bornLater(now: Record<string, string>[], first: Set<string>): string[] {
  return now
    .filter((m) => !first.has(seriesKey(m)))
    .filter((m) => !Object.keys(m).some((l) => Object.hasOwn(OPEN_LABELS, l)))
    .map((m) => `${m.__name__}{${Object.entries(m).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}="${v}"`).join(',')}}`);
}

/** Every series of our metrics Prometheus has seen since the run began. */
async function ourSeries(): Promise<Record<string, string>[]> {
  return prom.series('{__name__=~"(gateway|worker)_.+"}', startedAt / 1000);
}

before(async () => {
  startedAt = Date.now();
  phase('start');
  tmp = mkdtempSync(join(tmpdir(), 'monitoring-live-'));
  [model, redis, workerPort] = await Promise.all([exportTinyModel('none'), startPrivateRedis(), freePort()]);
  worker = await startWorker(workerEnv(), workerPort);
  gateway = await startGatewayProcess({
    GATEWAY_WORKERS_URLS: worker.url,
    GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '200',
    GATEWAY_WORKERS_HEALTH_TIMEOUT_MS: '2000',
    GATEWAY_REDIS_URL: redis.url,
    // Generous: on a busy machine a 100 ms timeout would send decisions to the outage policy.
    GATEWAY_REDIS_COMMAND_TIMEOUT_MS: '1000',
    GATEWAY_AUTH_KEYS: JSON.stringify([
      { sha256: sha256Hex(KEYS.steady), tenant: 'steady', tier: 'pro' },
      { sha256: sha256Hex(KEYS.tight), tenant: 'tight', tier: 'tight' },
    ]),
    GATEWAY_AUTH_ADMIN_TOKEN_SHA256: sha256Hex(ADMIN_TOKEN),
    GATEWAY_LIMITS_TIERS: JSON.stringify(TIERS),
    GATEWAY_KNOWLEDGE_BASE_PATH: KB_FIXTURE,
    GATEWAY_KNOWLEDGE_BASE_MIN_SCORE: '1',
    GATEWAY_MODEL_DEFAULT_MAX_TOKENS: '4',
  });
  // The gateway has checked the worker: its first answer will come from it.
  for (let i = 0; ; i++) {
    const r = (await (await fetch(`${gateway.url}/admin/workers`, { headers: admin() })).json()) as { workers: { healthy: boolean }[] };
    if (r.workers.some((w) => w.healthy)) break;
    assert.ok(i < 200, 'the gateway sees the worker healthy');
    await sleep(50);
  }
  phase('processes');
  const ruleFile = join(tmp, 'alerts.yml');
  const doc = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: { for?: string }[] }[] };
  for (const r of doc.groups.flatMap((g) => g.rules)) if (r.for !== undefined) r.for = `${FOR_S}s`;
  writeFileSync(ruleFile, stringify(doc));
  prom = await startPrometheus({ targets: { gateway: hostPort(gateway.url), worker: hostPort(worker.url) }, ruleFiles: [ruleFile], interval: `${INTERVAL_S}s` });
  for (let i = 0; ; i++) {
    const targets = await prom.targets();
    if (targets.length === 2 && targets.every((t) => t.health === 'up')) break;
    assert.ok(i < 200, `both targets scraped: ${JSON.stringify(targets)}\n${prom.output()}`);
    await sleep(50);
  }
  panels = await dashboardQueries();
  phase('first scrape');
});

after(async () => {
  await prom?.stop();
  await gateway?.stop();
  await worker?.stop();
  await redis?.stop();
  model?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const admin = () => ({ authorization: `Bearer ${ADMIN_TOKEN}` });
const bearer = (key: keyof typeof KEYS) => ({ authorization: `Bearer ${KEYS[key]}`, 'content-type': 'application/json' });
const question = (content: string) => ({ messages: [{ role: 'user', content }] });

test('before any traffic, every series a panel or an alert rule names is there from the first scrape, with the labels it matches on', async () => {
  assert.ok(panels.length >= 40 && ruleQueries.length >= 10, `${panels.length} panel queries, ${ruleQueries.length} rules`);
  firstSeries = new Set((await ourSeries()).map(seriesKey));
  assert.deepEqual(await missingSeries([...panels, ...ruleQueries]), []);
});

test('a little traffic of each kind: plain, streamed, invalid, rate-limited, degraded', async () => {
  const post = (path: string, body: unknown, headers: Record<string, string> = bearer('steady')) =>
    fetch(`${gateway.url}${path}`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const models = (await (await fetch(`${gateway.url}/v1/models`, { headers: bearer('steady') })).json()) as { data: { id: string }[] };
  const modelId = models.data[0]!.id;

  const plain = await Promise.all([
    post('/v1/chat', question('借钱不还怎么办？')),
    post('/v1/chat/completions', { model: modelId, ...question('离婚时房产怎么分割？'), max_tokens: 3 }),
    post('/v1/completions', { model: modelId, prompt: '劳动合同', max_tokens: 3 }),
  ]);
  for (const r of plain) assert.equal(r.status, 200, await r.clone().text());
  assert.equal(((await plain[0]!.json()) as { degraded: unknown }).degraded, false, 'answered by the worker');

  for (const r of await Promise.all([post('/v1/chat', { ...question('工伤怎么认定？'), stream: true }), post('/v1/chat/completions', { model: modelId, ...question('遗嘱有效吗？'), stream: true })])) {
    assert.equal(r.status, 200);
    assert.match(await r.text(), /data: \[DONE\]/);
  }

  const invalid = await Promise.all([
    post('/v1/chat', '{"messages":'),
    post('/v1/chat', { messages: [] }),
    post('/v1/chat/completions', { model: 'no-such-model', ...question('x') }),
    post('/v1/chat', question('x'), { 'content-type': 'application/json' }),
    fetch(`${gateway.url}/nowhere`),
    fetch(`${worker.url}/v1/generate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":' }),
  ]);
  assert.deepEqual(invalid.map((r) => r.status), [400, 400, 404, 401, 404, 400]);

  const tight = [];
  for (let i = 0; i < 4; i++) tight.push((await fetch(`${gateway.url}/v1/models`, { headers: bearer('tight') })).status);
  assert.deepEqual(tight, [200, 200, 429, 429]);

  const setDegrade = (mode: string) => fetch(`${gateway.url}/admin/degrade`, { method: 'PUT', headers: { ...admin(), 'content-type': 'application/json' }, body: JSON.stringify({ mode, source: 'kb' }) });
  assert.equal((await setDegrade('forced')).status, 200);
  for (const r of await Promise.all([post('/v1/chat', question('借钱不还怎么办？')), post('/v1/chat', { ...question('合同违约怎么赔偿？'), stream: true })])) {
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-degraded'), 'kb');
    await r.text();
  }
  assert.equal((await setDegrade('auto')).status, 200);
  phase('traffic');
  // Two scrapes after the traffic: the rates over INTERVALS.rate hold it.
  await waitForScrapes(2);
  phase('scraped');
});

test('every panel query gives data, each result with the labels its legend shows; every unit fits its values', async () => {
  let problems = await panelDataProblems(panels);
  if (problems.length > 0) {
    // A scrape that came late or timed out on a busy machine leaves gauges stale for a moment;
    // what is still missing two scrapes later is missing.
    await waitForScrapes(2);
    problems = await panelDataProblems(panels);
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(unitProblems(panels), []);
});

test('every alert rule evaluates without error, by the API and in Prometheus\' own rule evaluation', async () => {
  const failed: string[] = [];
  for (const q of ruleQueries) {
    try {
      const { warnings } = await prom.query(q.expr);
      if (warnings.length) failed.push(`${q.where}: ${warnings.join('; ')}`);
    } catch (err) {
      failed.push(`${q.where}: ${(err as Error).message}`);
    }
  }
  assert.deepEqual(failed, []);
  const loaded = await prom.rules();
  assert.equal(loaded.length, rules.length, 'Prometheus loaded every rule');
  assert.deepEqual(loaded.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`), []);
});

test('every label a query groups or matches on (by, without, on, ignoring) is on the live series it applies to', async () => {
  assert.deepEqual(await missingGroupingLabels([...panels, ...ruleQueries]), []);
});

test('the traffic gave birth to no series: every series of ours was there at the first scrape, unless a label of it is open', async () => {
  const now = await ourSeries();
  assert.ok(now.length > firstSeries.size / 2);
  assert.deepEqual(bornLater(now, firstSeries), []);
});

test('promtool check metrics finds nothing in either process after the traffic (every series made at zero included)', async () => {
  for (const url of [gateway.url, worker.url]) {
    const text = await (await fetch(`${url}/metrics`)).text();
    assert.ok(text.length > 10_000, url);
    assert.deepEqual(promtoolCheckMetrics(text), { status: 0, findings: '' }, url);
  }
});

interface AlertTimeline {
  pendingAt?: number;
  firingAt?: number;
  /** `activeAt` as Prometheus reports it: when the expression first held */
  activeAt?: number;
  resolvedAt?: number;
}

/** Polls the active alerts until `done` holds for the alerts named, recording when each went pending, fired and went away. */
async function watch(names: string[], timelines: Map<string, AlertTimeline>, done: (active: Map<string, PromAlert>) => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const active = new Map((await prom.alerts()).filter((a) => names.includes(a.labels.alertname!)).map((a) => [a.labels.alertname!, a]));
    const now = performance.now();
    for (const name of names) {
      const tl = timelines.get(name) ?? {};
      timelines.set(name, tl);
      const a = active.get(name);
      if (a?.state === 'pending') tl.pendingAt ??= now;
      if (a?.state === 'firing') tl.firingAt ??= now;
      if (a) tl.activeAt ??= Date.parse(a.activeAt);
      if (!a && tl.firingAt !== undefined) tl.resolvedAt ??= now;
    }
    if (done(active)) return;
    assert.ok(now < deadline, `${what}: ${JSON.stringify(Object.fromEntries(timelines))}, active ${JSON.stringify([...active.values()])}`);
    await sleep(200);
  }
}

/** Pending first, then firing about `for` after the expression first held, soon after the cause. */
function assertFiredInTime(name: string, tl: AlertTimeline, causeAt: number): void {
  assert.ok(tl.pendingAt !== undefined && tl.firingAt !== undefined, `${name} went pending and fired: ${JSON.stringify(tl)}`);
  assert.ok(tl.pendingAt < tl.firingAt, `${name}: pending before firing`);
  assert.ok(tl.firingAt - tl.pendingAt >= (FOR_S - INTERVAL_S) * 1000 - 300, `${name}: pending for its whole for (${((tl.firingAt - tl.pendingAt) / 1000).toFixed(1)} s)`);
  // The cause is seen at the next scrape and evaluation (some health checks first for
  // GatewayNoHealthyWorker), then the rule waits out its `for`; the rest is a busy machine.
  const took = (tl.firingAt - causeAt) / 1000;
  assert.ok(took <= FOR_S + 10, `${name} fired ${took.toFixed(1)} s after the cause`);
}

test('alerts fire for real: the worker killed, then Redis stopped, each goes pending, fires within its for, and resolves on recovery', async (t) => {
  const workerAlerts = ['WorkerDown', 'GatewayNoHealthyWorker'];
  const redisAlerts = ['GatewayRateLimiterRedisOutage'];
  const expected = [...workerAlerts, ...redisAlerts];
  for (const name of expected) assert.ok(rules.some((r) => r.alert === name && r.for !== undefined), `rule ${name} with a for`);
  assert.deepEqual((await prom.alerts()).filter((a) => expected.includes(a.labels.alertname!)), [], 'none active before');

  const timelines = new Map<string, AlertTimeline>();
  const firing = (names: string[]) => (active: Map<string, PromAlert>) => names.every((n) => active.get(n)?.state === 'firing');
  const gone = (names: string[]) => (active: Map<string, PromAlert>) => names.every((n) => !active.has(n));

  const killedAt = performance.now();
  worker.child.kill('SIGKILL');
  await worker.exited;
  await watch(workerAlerts, timelines, firing(workerAlerts), (FOR_S + 15) * 1000, 'the worker-down alerts fire');
  const restartedAt = performance.now();
  worker = await startWorker(workerEnv(), workerPort);
  await watch(workerAlerts, timelines, gone(workerAlerts), 20_000, 'the worker-down alerts resolve');
  const workerBackAt = performance.now();
  phase('worker alerts');

  const stoppedAt = performance.now();
  await redis.stop();
  await watch(redisAlerts, timelines, firing(redisAlerts), (FOR_S + 15) * 1000, 'the limiter-outage alert fires');
  const redisRestartedAt = performance.now();
  await redis.start();
  await watch(redisAlerts, timelines, gone(redisAlerts), 20_000, 'the limiter-outage alert resolves');
  phase('redis alert');

  for (const name of workerAlerts) assertFiredInTime(name, timelines.get(name)!, killedAt);
  assertFiredInTime('GatewayRateLimiterRedisOutage', timelines.get('GatewayRateLimiterRedisOutage')!, stoppedAt);
  for (const [name, tl] of timelines) {
    const back = redisAlerts.includes(name) ? redisRestartedAt : restartedAt;
    assert.ok(tl.resolvedAt !== undefined && tl.resolvedAt > back, `${name} resolved after recovery`);
    t.diagnostic(
      `${name}: pending ${((tl.pendingAt! - (workerAlerts.includes(name) ? killedAt : stoppedAt)) / 1000).toFixed(1)} s after the cause, ` +
        `firing ${((tl.firingAt! - tl.pendingAt!) / 1000).toFixed(1)} s later, resolved ${((tl.resolvedAt! - back) / 1000).toFixed(1)} s after recovery`,
    );
  }
  assert.ok(workerBackAt > restartedAt);
});

test('the checks catch what they are for: a missing series, a missing label, no data, a wrong unit, an unknown variable', async () => {
  const bad: Query[] = [{ where: 'x', expr: 'sum by (tenant) (rate(gateway_no_such_thing_total[1m])) + on (pod) gateway_breaker_state' }];
  assert.deepEqual(await missingSeries(bad), ['x: gateway_no_such_thing_total matches no series']);
  assert.deepEqual(await missingSeries([{ where: 'y', expr: 'gateway_breaker_state{tenant!="a"}' }]), ['y: gateway_breaker_state{tenant!="a"} matches on label tenant, which no series of it has']);
  const grouping = await missingGroupingLabels([{ where: 'z', expr: 'sum by (route, tenant) (gateway_http_requests_total) / on (pod) group_left gateway_breaker_state' }]);
  assert.equal(grouping.length, 3, grouping.join('\n'));
  assert.ok(grouping.some((g) => g.startsWith('z: by (tenant) but no series of gateway_http_requests_total has tenant')), grouping.join('\n'));
  assert.equal(grouping.filter((g) => g.startsWith('z: on (pod)')).length, 2, 'on() is checked on both sides');

  // A panel as the gateway dashboard had it: errors per second and seconds on one "short" axis.
  const mixed: Dashboard = {
    uid: 'mixed',
    title: 'mixed',
    panels: [
      {
        id: 1,
        type: 'timeseries',
        title: 'Redis errors and time',
        fieldConfig: { defaults: { unit: 'short' } },
        targets: [
          { refId: 'A', expr: 'sum by (kind) (rate(gateway_ratelimit_redis_errors_total[$__rate_interval]))', legendFormat: '{{kind}} {{tenant}}' },
          { refId: 'B', expr: 'histogram_quantile(0.99, sum by (le) (rate(gateway_ratelimit_duration_seconds_bucket[$__rate_interval])))' },
          { refId: 'C', expr: 'gateway_ratelimit_mode{mode="nonsense"}' },
        ],
      },
      { id: 2, type: 'stat', title: 'no unit', targets: [{ expr: 'max(gateway_breaker_state)' }] },
    ],
  };
  const queries = await dashboardQueries([{ file: 'mixed.json', json: mixed }]);
  assert.deepEqual(unitProblems(queries), [
    'mixed.json: Redis errors and time (A): a per-second value shown as "short" (fits: reqps, ops, rps, wps, iops, cps)',
    'mixed.json: Redis errors and time (B): a time value shown as "short" (fits: s, ms, µs, ns, m, h, d, dtdurations, dtdurationms)',
    'mixed.json: no unit: no unit (fieldConfig.defaults.unit)',
  ]);
  const data = await panelDataProblems(queries);
  assert.equal(data.length, 2, data.join('\n'));
  assert.match(data[0]!, /legend shows \{\{tenant\}\}/);
  assert.match(data[1]!, /no data/);

  // Template variables are put in as Grafana would; an undefined one is an error.
  const templated: Dashboard = {
    uid: 'templated',
    title: 'templated',
    panels: [],
    templating: {
      list: [
        { name: 'route', type: 'query', query: { query: 'label_values(gateway_http_requests_total, route)' }, multi: true, includeAll: true },
        { name: 'q', type: 'custom', query: '0.5,0.99', current: { value: '0.99' } },
      ],
    },
  };
  const expr = await substitute('histogram_quantile($q, sum by (le) (rate(gateway_http_request_duration_seconds_bucket{route=~"${route}"}[$__rate_interval])))', templated, INTERVALS, variableValues);
  assert.match(expr, /^histogram_quantile\(0\.99, .*route=~"\(.*\/v1\/chat.*\)"\}\[15s\]\)\)\)$/);
  assert.ok((await prom.query(expr)).result.length > 0);
  await assert.rejects(substitute('up{job="$nope"}', templated, INTERVALS, variableValues), /\$nope, which is neither Grafana's nor a variable of dashboard templated/);

  // A series born at its first event is caught.
  assert.deepEqual(bornLater([{ __name__: 'gateway_x_total', code: 'NEW' }, { __name__: 'gateway_y', worker: 'http://w' }], new Set()), ['gateway_x_total{code="NEW"}']);
});

test('the whole run stays well under 90 s', (t) => {
  const end = performance.now();
  const [, first] = phases[0]!;
  for (let i = 1; i < phases.length; i++) t.diagnostic(`${phases[i]![0]}: ${((phases[i]![1] - phases[i - 1]![1]) / 1000).toFixed(1)} s`);
  t.diagnostic(`total ${((end - first) / 1000).toFixed(1)} s`);
  assert.ok(end - first < 80_000, `${((end - first) / 1000).toFixed(1)} s`);
});
