/** The load test's summary: one table for people, the same numbers as JSON for machines. */
import type { Outcome, RequestKind } from './workload.js';

export interface LoadSummary {
  url: string;
  durationSeconds: number;
  connections: number;
  requests: number;
  rps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  status: Record<string, number>;
  outcomes: Record<Outcome, number>;
  kinds: Partial<Record<RequestKind, number>>;
  /** Fallback answers among the successful answers to valid requests. */
  degradedShare: number;
  errors: number;
  timeouts: number;
}

export function degradedShare(outcomes: Record<Outcome, number>): number {
  const answered = outcomes.ok + outcomes.degraded;
  return answered === 0 ? 0 : outcomes.degraded / answered;
}

function row(cells: string[], widths: number[]): string {
  return `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
}

export function formatTable(s: LoadSummary): string {
  const rows: [string, string][] = [
    ['target', s.url],
    ['duration', `${s.durationSeconds.toFixed(1)} s, ${s.connections} connections`],
    ['requests', String(s.requests)],
    ['requests/s', s.rps.toFixed(1)],
    ['latency p50 / p90 / p99 / max', `${s.latencyMs.p50} / ${s.latencyMs.p90} / ${s.latencyMs.p99} / ${s.latencyMs.max} ms`],
    ['status codes', Object.entries(s.status).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'],
    ['answers (worker / fallback)', `${s.outcomes.ok} / ${s.outcomes.degraded}`],
    ['degraded share', `${(s.degradedShare * 100).toFixed(1)}%`],
    ['invalid requests refused', String(s.outcomes.refused)],
    ['rate-limited (429) / unavailable (503)', `${s.outcomes.rate_limited} / ${s.outcomes.unavailable}`],
    ['wrong answers', String(s.outcomes.wrong)],
    ['connection errors / timeouts', `${s.errors} / ${s.timeouts}`],
  ];
  const widths = [Math.max(...rows.map((r) => r[0].length)), Math.max(...rows.map((r) => r[1].length))];
  return [row(['measure', 'value'], widths), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map((r) => row(r, widths))].join('\n');
}
