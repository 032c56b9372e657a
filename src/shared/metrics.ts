/**
 * Every process keeps its metrics on a Registry of its own (never prom-client's global one,
 * which breaks tests with "already registered" and mixes processes). Names follow
 * `<area>_<thing>_<unit>`, counters end in `_total`, durations are in seconds.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

export function createRegistry(processName: 'gateway' | 'worker'): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ process: processName });
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** Buckets for request latencies (seconds): 5 ms to 2 min. */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Buckets for per-token latencies (seconds): 1 ms to 5 s. */
export const TOKEN_LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** Buckets for fast internal steps (seconds): 50 µs to 250 ms. */
export const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
