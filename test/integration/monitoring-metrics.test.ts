/**
 * Dashboards and alert rules name only metrics the real processes expose: a worker process on
 * the tiny golden model and a gateway process in front of it answer one question, then both
 * /metrics are read. Dashboard queries are also parsed by promtool.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../helpers/paths.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { exportTinyModel, startWorker, type TinyModel, type WorkerProcess } from '../helpers/worker-process.js';
import { readJson } from '../helpers/json.js';

const DOCKER = join(PROJECT_ROOT, 'docker');
const DASHBOARD_DIR = join(DOCKER, 'grafana/dashboards');
const METRIC_NAME = /\b(?:gateway|worker)_[a-z0-9_]+\b/g;

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string; datasource?: { uid: string } }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
}

const dashboards = readdirSync(DASHBOARD_DIR)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, json: readJson<Dashboard>(join(DASHBOARD_DIR, f)) }));

function dashboardQueries(): { where: string; expr: string }[] {
  return dashboards.flatMap(({ file, json }) =>
    json.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `${file}: ${p.title}`, expr: t.expr }))),
  );
}

function ruleQueries(): { where: string; expr: string }[] {
  const file = parse(readFileSync(join(DOCKER, 'prometheus/rules/alerts.yml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return file.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr })));
}

/** Names a Prometheus exposition defines: from its `# TYPE` lines, with a histogram's series suffixes. */
export function exposedNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) names.add(name + s);
  }
  return names;
}

function usedNames(queries: { where: string; expr: string }[]): Map<string, string[]> {
  const used = new Map<string, string[]>();
  for (const q of queries) {
    for (const name of q.expr.match(METRIC_NAME) ?? []) used.set(name, [...(used.get(name) ?? []), q.where]);
  }
  return used;
}

let model: TinyModel;
let worker: WorkerProcess;
let gateway: GatewayProcess;
let gatewayNames: Set<string>;
let workerNames: Set<string>;

before(async () => {
  model = await exportTinyModel('none');
  worker = await startWorker({ WORKER_MODEL_DIR: model.modelDir, WORKER_ADAPTERS_DIR: join(model.root, 'no-adapters') });
  gateway = await startGatewayProcess({
    GATEWAY_WORKERS_URLS: worker.url,
    GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '100',
    GATEWAY_REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
    GATEWAY_AUTH_ANONYMOUS: 'true',
  });
  // One answer from the worker, so that labelled series are there too (not only # TYPE lines).
  let answer: { degraded: unknown } = { degraded: true };
  for (let i = 0; i < 50 && answer.degraded !== false; i++) {
    const res = await fetch(`${gateway.url}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: '借钱不还怎么办？' }], max_tokens: 4 }),
    });
    answer = (await res.json()) as typeof answer;
    if (answer.degraded !== false) await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(answer.degraded, false, 'the worker answered through the gateway');
  gatewayNames = exposedNames(await (await fetch(`${gateway.url}/metrics`)).text());
  workerNames = exposedNames(await (await fetch(`${worker.url}/metrics`)).text());
});

after(async () => {
  await gateway?.stop();
  await worker?.stop();
  model?.cleanup();
});

test('the gateway exposes every gateway_* metric the dashboards and alert rules use', (t) => {
  assert.ok(gatewayNames.has('gateway_http_requests_total'), 'the gateway /metrics was read');
  const limiterInBuild = existsSync(join(PROJECT_ROOT, 'dist/src/gateway/limiter'));
  const missing: string[] = [];
  let checked = 0;
  for (const [name, where] of usedNames([...dashboardQueries(), ...ruleQueries()])) {
    if (!name.startsWith('gateway_')) continue;
    if (name.startsWith('gateway_ratelimit_') && !limiterInBuild) {
      t.diagnostic(`not checked (the rate limiter is not in this build): ${name}`);
      continue;
    }
    checked++;
    if (!gatewayNames.has(name)) missing.push(`${name} (${where.join('; ')})`);
  }
  assert.deepEqual(missing, []);
  assert.ok(checked >= 12, `only ${checked} gateway names checked`);
});

test('the worker exposes every worker_* metric the dashboards and alert rules use', () => {
  assert.ok(workerNames.has('worker_decode_tokens_total'), 'the worker /metrics was read');
  const used = [...usedNames([...dashboardQueries(), ...ruleQueries()])].filter(([n]) => n.startsWith('worker_'));
  assert.ok(used.length >= 15, 'the worker dashboard and rules use worker metrics');
  const missing = used.filter(([n]) => !workerNames.has(n)).map(([n, where]) => `${n} (${where.join('; ')})`);
  assert.deepEqual(missing, []);
});

test('the worker states its queue and KV capacity, which the near-full alerts divide by', async () => {
  const text = await (await fetch(`${worker.url}/metrics`)).text();
  assert.match(text, /^worker_queue_capacity\{process="worker"\} 64$/m);
  assert.match(text, /^worker_kv_tokens_capacity\{process="worker"\} 16384$/m);
});

test('a name the process does not expose is caught', () => {
  const used = usedNames([{ where: 'x', expr: 'sum(rate(gateway_no_such_thing_total[5m])) / gateway_http_requests_total' }]);
  assert.deepEqual([...used.keys()], ['gateway_no_such_thing_total', 'gateway_http_requests_total']);
  assert.equal(gatewayNames.has('gateway_no_such_thing_total'), false);
  assert.equal(gatewayNames.has('gateway_http_requests_total'), true);
});

test('every dashboard query is valid PromQL (parsed by promtool)', () => {
  // Grafana's $__rate_interval is not PromQL; Grafana puts a range in its place.
  const queries = dashboardQueries();
  const rules = {
    groups: [
      {
        name: 'dashboards',
        rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr.replaceAll('$__rate_interval', '1m') })),
      },
    ],
  };
  const dir = mkdtempSync(join(tmpdir(), 'dash-'));
  try {
    const file = join(dir, 'queries.yml');
    writeFileSync(file, JSON.stringify(rules));
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, new RegExp(`SUCCESS: ${queries.length} rules found`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dashboards: the gateway and worker boards, provisioned datasource, unique panel ids', () => {
  const datasource = parse(readFileSync(join(DOCKER, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
    datasources: { uid: string; url: string }[];
  };
  const uid = datasource.datasources[0]!.uid;
  assert.deepEqual(dashboards.map((d) => d.file).sort(), ['gateway.json', 'worker.json']);
  assert.equal(new Set(dashboards.map((d) => d.json.uid)).size, dashboards.length);
  for (const { file, json } of dashboards) {
    const ids = json.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, `${file}: panel ids repeat`);
    for (const p of json.panels) {
      assert.equal(p.datasource?.uid, uid, `${file}: ${p.title}`);
      assert.ok((p.targets ?? []).length > 0, `${file}: ${p.title} has no query`);
      for (const t of p.targets ?? []) assert.equal(t.datasource?.uid, uid, `${file}: ${p.title}`);
    }
  }
  const titles = dashboards.flatMap((d) => d.json.panels.map((p) => p.title.toLowerCase())).join(' | ');
  for (const want of ['requests', 'status', 'first token', 'inter-token', 'end-to-end', 'breaker', 'degrade', 'fallback', 'rate-limit', 'queue', 'running', 'batch', 'step', 'tokens per second', 'kv']) {
    assert.ok(titles.includes(want), `no panel about ${want}`);
  }
});
