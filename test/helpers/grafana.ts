/**
 * The Grafana dashboards of docker/grafana/dashboards/ as a test reads them: every panel's
 * queries, legends and unit, with Grafana's variables put in as Grafana would before it sends a
 * query to Prometheus.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readJson } from './json.js';

export interface GrafanaTarget {
  refId?: string;
  expr: string;
  legendFormat?: string;
}

export interface GrafanaPanel {
  id: number;
  type: string;
  title: string;
  datasource?: { uid: string };
  fieldConfig?: {
    defaults?: { unit?: string };
    overrides?: { matcher: { id: string; options?: unknown }; properties: { id: string; value?: unknown }[] }[];
  };
  targets?: GrafanaTarget[];
  /** a row panel's collapsed children */
  panels?: GrafanaPanel[];
}

export interface GrafanaVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  definition?: string;
  current?: { value?: string | string[] };
  options?: { value: string }[];
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string | null;
}

export interface Dashboard {
  uid: string;
  title: string;
  panels: GrafanaPanel[];
  templating?: { list: GrafanaVariable[] };
}

export interface PanelQuery {
  where: string;
  dashboard: Dashboard;
  panel: GrafanaPanel;
  target: GrafanaTarget;
  /** the unit Grafana shows this query's values in: an override for its refId, or the panel's */
  unit: string | undefined;
}

export function readDashboards(dir: string): { file: string; json: Dashboard }[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ file: f, json: readJson<Dashboard>(join(dir, f)) }));
}

function panelsOf(panels: GrafanaPanel[]): GrafanaPanel[] {
  return panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

function unitFor(panel: GrafanaPanel, refId: string | undefined): string | undefined {
  for (const o of panel.fieldConfig?.overrides ?? []) {
    if (o.matcher.id !== 'byFrameRefID' || o.matcher.options !== refId) continue;
    const unit = o.properties.find((p) => p.id === 'unit');
    if (typeof unit?.value === 'string') return unit.value;
  }
  return panel.fieldConfig?.defaults?.unit;
}

export function panelQueries(dashboards: { file: string; json: Dashboard }[]): PanelQuery[] {
  return dashboards.flatMap(({ file, json }) =>
    panelsOf(json.panels).flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ where: `${file}: ${panel.title}${target.refId ? ` (${target.refId})` : ''}`, dashboard: json, panel, target, unit: unitFor(panel, target.refId) })),
    ),
  );
}

/** Labels a legend shows: `{{label}}`. */
export function legendLabels(legend: string | undefined): string[] {
  return [...(legend ?? '').matchAll(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g)].map((m) => m[1]!);
}

export interface Intervals {
  /** `$__rate_interval` */
  rate: string;
  /** `$__interval`, `$interval` */
  interval: string;
  /** `$__range` */
  range: string;
}

/** What a template variable stands for, as a regex alternation when it may hold several values. */
export type VariableValues = (variable: GrafanaVariable) => Promise<string[]>;

function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`not a duration: ${d}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms'];
}

/**
 * The escapes of Grafana's Prometheus datasource: a multi-value variable's values become a regex
 * inside a PromQL string (so the regex's backslash is itself escaped), a single value only has
 * its backslashes and quotes escaped for the string.
 */
function regexValueEscape(s: string): string {
  return s.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

function stringValueEscape(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/'/g, "\\\\'");
}

/**
 * The query Grafana would send: its global variables (`$__rate_interval`, `$__interval`,
 * `$__range` and their `_ms`/`_s` forms) and the dashboard's template variables (`$name`,
 * `${name}`, `${name:format}`, `[[name]]`) replaced. A variable the dashboard does not define is
 * an error, as it would leave a query Prometheus cannot parse.
 */
export async function substitute(expr: string, dashboard: Dashboard, intervals: Intervals, values: VariableValues): Promise<string> {
  const builtins: Record<string, string> = {
    __rate_interval: intervals.rate,
    __interval: intervals.interval,
    interval: intervals.interval,
    __range: intervals.range,
    __interval_ms: String(durationMs(intervals.interval)),
    __range_ms: String(durationMs(intervals.range)),
    __range_s: String(durationMs(intervals.range) / 1000),
  };
  const variables = new Map((dashboard.templating?.list ?? []).map((v) => [v.name, v]));
  const pattern = /\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]|\$([A-Za-z0-9_]+)/g;
  const names = new Set([...expr.matchAll(pattern)].map((m) => m[1] ?? m[2] ?? m[3]!));
  const resolved = new Map<string, string>();
  for (const name of names) {
    if (Object.hasOwn(builtins, name) && !variables.has(name)) {
      resolved.set(name, builtins[name]!);
      continue;
    }
    const v = variables.get(name);
    if (!v) throw new Error(`the query uses $${name}, which is neither Grafana's nor a variable of dashboard ${dashboard.uid}`);
    const list = await values(v);
    if (list.length === 0) throw new Error(`dashboard ${dashboard.uid}: variable $${name} has no value`);
    const several = v.multi || v.includeAll;
    resolved.set(name, several && list.length > 1 ? `(${list.map(regexValueEscape).join('|')})` : several ? regexValueEscape(list[0]!) : stringValueEscape(list[0]!));
  }
  return expr.replace(pattern, (_all, a?: string, b?: string, c?: string) => resolved.get(a ?? b ?? c!)!);
}

/** A query variable's `label_values(metric, label)` or `label_values(label)`, parsed. */
export function labelValuesQuery(v: GrafanaVariable): { metric: string | null; label: string } | null {
  const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? v.definition ?? '');
  const m = /^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$/.exec(q);
  return m ? { metric: m[1] ?? null, label: m[2]! } : null;
}
