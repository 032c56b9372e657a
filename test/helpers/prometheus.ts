/**
 * A private Prometheus server (Debian's `prometheus`, which the test runner installs) on a free
 * loopback port with a temporary TSDB, scraping the given targets, and a small client of its
 * HTTP API (instant queries, series, targets, rules, alerts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, sleep } from '../../src/shared/net.js';

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
}

export interface PromRule {
  name: string;
  type: 'alerting' | 'recording';
  health: string;
  lastError?: string;
  query: string;
}

export interface PrometheusOptions {
  /** job name → `host:port` of its one target */
  targets: Record<string, string>;
  /** rule files to load (already rewritten as the test wants them) */
  ruleFiles: string[];
  /** scrape and evaluation interval, e.g. `1s` */
  interval: string;
}

export interface Prometheus {
  url: string;
  dir: string;
  /** An instant query; throws with Prometheus' own message when it fails to evaluate. */
  query(expr: string, time?: number): Promise<{ result: PromSample[]; warnings: string[] }>;
  /** Series matching a selector between `start` and now (seconds since the epoch). */
  series(selector: string, start: number): Promise<Record<string, string>[]>;
  targets(): Promise<{ labels: Record<string, string>; health: string; lastScrape: string }[]>;
  rules(): Promise<PromRule[]>;
  alerts(): Promise<PromAlert[]>;
  output(): string;
  stop(): Promise<void>;
}

export class PromQueryError extends Error {}

async function api<T>(base: string, path: string, params: Record<string, string | string[]> = {}): Promise<{ data: T; warnings: string[] }> {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) body.append(k, x);
  // POST: long queries do not fit a URL.
  const res = await fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const json = (await res.json()) as { status: string; data: T; error?: string; errorType?: string; warnings?: string[] };
  if (json.status !== 'success') throw new PromQueryError(`${json.errorType}: ${json.error}`);
  return { data: json.data, warnings: json.warnings ?? [] };
}

async function apiGet<T>(base: string, path: string): Promise<T> {
  const res = await fetch(`${base}${path}`);
  const json = (await res.json()) as { status: string; data: T; error?: string };
  if (json.status !== 'success') throw new PromQueryError(String(json.error));
  return json.data;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
  const port = await freePort();
  const config = {
    global: { scrape_interval: options.interval, scrape_timeout: options.interval, evaluation_interval: options.interval },
    rule_files: options.ruleFiles,
    scrape_configs: Object.entries(options.targets).map(([job, target]) => ({ job_name: job, static_configs: [{ targets: [target] }] })),
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, stringify(config));
  const child: ChildProcess = spawn(
    'prometheus',
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`prometheus exited with ${child.exitCode}: ${out}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`prometheus did not get ready: ${out}`);
    }
    await sleep(100);
  }
  return {
    url,
    dir,
    async query(expr, time) {
      const r = await api<{ result: PromSample[] }>(url, '/api/v1/query', { query: expr, ...(time === undefined ? {} : { time: String(time) }) });
      return { result: r.data.result, warnings: r.warnings };
    },
    async series(selector, start) {
      return (await api<Record<string, string>[]>(url, '/api/v1/series', { 'match[]': selector, start: String(start) })).data;
    },
    async targets() {
      return (await apiGet<{ activeTargets: { labels: Record<string, string>; health: string; lastScrape: string }[] }>(url, '/api/v1/targets')).activeTargets;
    },
    async rules() {
      const data = await apiGet<{ groups: { rules: PromRule[] }[] }>(url, '/api/v1/rules');
      return data.groups.flatMap((g) => g.rules);
    },
    async alerts() {
      return (await apiGet<{ alerts: PromAlert[] }>(url, '/api/v1/alerts')).alerts;
    },
    output: () => out,
    stop,
  };
}
