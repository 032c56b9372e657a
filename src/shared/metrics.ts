/**
 * Metrics, built one way in every process: each area has a `create…Metrics(registry)` function
 * that makes its metrics with `counter`, `gauge` and `histogram` below and returns them as one
 * plain object.
 *
 * Every process keeps its metrics on a Registry of its own (never prom-client's global one,
 * which breaks tests with "already registered" and mixes processes). Names follow
 * `<area>_<thing>_<unit>`, counters end in `_total`, durations are in seconds.
 *
 * A labelled series is born at its first event unless it is made beforehand, and a panel over a
 * series that does not exist shows "No data" while `rate()` misses that first event. So a metric
 * declares its label values where they are known in advance, and each combination of them is
 * made at zero when the metric is created. A label whose values are open (a worker's URL) is
 * declared with no values; its series appear as they are used.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * prom-client's default gauges that carry a `_total` suffix, which Prometheus reserves for
 * counters (`promtool check metrics` refuses them). The same counts are in the gauges of the same
 * name without the suffix (by type), whose sum is the total.
 */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createRegistry(processName: 'gateway' | 'worker'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process: processName });
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULTS) registry.removeSingleMetric(name);
  return registry;
}

/** Label names, each with the values known in advance (empty: open, series appear as used). */
export type LabelValues<L extends string> = { readonly [K in L]: readonly string[] };

export interface MetricSpec<L extends string> {
  name: string;
  help: string;
  labels?: LabelValues<L>;
}

/** Every combination of the known label values; none when a label is open. */
function knownSeries<L extends string>(labels: LabelValues<L> | undefined): Record<L, string>[] {
  if (!labels) return [];
  let series: Record<string, string>[] = [{}];
  for (const [name, values] of Object.entries(labels) as [string, readonly string[]][]) {
    if (values.length === 0) return [];
    series = series.flatMap((s) => values.map((v) => ({ ...s, [name]: v })));
  }
  return series as Record<L, string>[];
}

function labelNames<L extends string>(labels: LabelValues<L> | undefined): L[] {
  return labels ? (Object.keys(labels) as L[]) : [];
}

export function counter<L extends string = never>(registry: Registry, spec: MetricSpec<L>): Counter<L> {
  const c = new Counter<L>({ name: spec.name, help: spec.help, labelNames: labelNames(spec.labels), registers: [registry] });
  for (const s of knownSeries(spec.labels)) c.inc(s, 0);
  return c;
}

export function gauge<L extends string = never>(
  registry: Registry,
  spec: MetricSpec<L> & { collect?: (this: Gauge<L>) => void | Promise<void> },
): Gauge<L> {
  const g = new Gauge<L>({ name: spec.name, help: spec.help, labelNames: labelNames(spec.labels), registers: [registry], ...(spec.collect ? { collect: spec.collect } : {}) });
  for (const s of knownSeries(spec.labels)) g.set(s, 0);
  return g;
}

export function histogram<L extends string = never>(registry: Registry, spec: MetricSpec<L> & { buckets: readonly number[] }): Histogram<L> {
  const h = new Histogram<L>({ name: spec.name, help: spec.help, labelNames: labelNames(spec.labels), buckets: [...spec.buckets], registers: [registry] });
  for (const s of knownSeries(spec.labels)) h.zero(s);
  return h;
}

/** Buckets for request latencies (seconds): 5 ms to 2 min. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Buckets for per-token latencies (seconds): 1 ms to 5 s. */
export const TOKEN_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Buckets for fast internal steps (seconds): 50 µs to 250 ms. */
export const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
