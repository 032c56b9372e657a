/**
 * The load test's summary, made from the generator's columns: the accounting of every request
 * sent, latencies (vLLM's measures: time to first token, inter-token latency, time per output
 * token, end-to-end), throughput, goodput under the SLOs, the generator's own schedule lag,
 * one row per stage, a per-second timeline and the chaos events. One table for people, the
 * same numbers as JSON for machines (`--json`), and the HTML report (html-report.ts).
 *
 * Latencies are those of answers from a worker (`answered`); fallback answers are counted but
 * have no tokens to time. TTFT, ITL and TPOT come from streamed answers only (a non-streamed
 * answer arrives in one piece). TPOT is (e2e − TTFT) / (output tokens − 1), as vLLM has it.
 * A request is good (goodput) when it was answered by a worker within every SLO given that it
 * can be measured against: a streamed answer against ttft, tpot, itl (its largest chunk gap)
 * and e2e, a non-streamed one against e2e only.
 */
import type { ChaosRecord } from './chaos.js';
import type { Slo } from './flags.js';
import { LOST, type StageResult } from './generator.js';
import { KINDS, OUTCOMES } from './workload.js';

export interface Percentiles {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

export interface RequestCounts {
  sent: number;
  answered: number;
  fallback: number;
  rate_limited: number;
  refused: number;
  failed: number;
  lost: number;
}

export interface StageSummary {
  /** Requests/s asked for (open loop) or null (closed loop). */
  rate: number | null;
  connections: number | null;
  duration_s: number;
  requests: RequestCounts;
  requests_per_s: number;
  output_tokens_per_s: number;
  goodput_rps: number;
  ttft_ms: Percentiles;
  e2e_ms: Percentiles;
  schedule_lag_ms: Percentiles;
}

export interface TimelinePoint {
  /** Second of the run (answers counted by the second they ended in). */
  t: number;
  sent: number;
  answered: number;
  fallback: number;
  failed: number;
  rate_limited: number;
  output_tokens: number;
  ttft_p50_ms: number | null;
  e2e_p50_ms: number | null;
  e2e_p99_ms: number | null;
  /** Largest schedule lag of the sends of this second (open loop). */
  lag_max_ms: number | null;
}

export interface LoadSummary {
  target: string;
  arrivals: string;
  started_at: string;
  duration_s: number;
  requests: RequestCounts;
  /** Answers that contradict the request: a 2xx to an invalid one, a 4xx other than 429 to a valid one. */
  wrong: number;
  /** Streams that started (200) and ended without their [DONE]: counted as failed. */
  broken_streams: number;
  status: Record<string, number>;
  kinds: Record<string, number>;
  latency_ms: { ttft: Percentiles; itl: Percentiles; tpot: Percentiles; e2e: Percentiles };
  requests_per_s: number;
  output_tokens_per_s: number;
  goodput_rps: number;
  slo_ms: Slo;
  schedule_lag_ms: Percentiles;
  /** The nice value of the generator's thread (it asks for -10 where allowed); null when unknown. */
  generator_nice: number | null;
  stages: StageSummary[];
  chaos: ChaosRecord[];
  transport_errors: Record<string, number>;
  timeline: TimelinePoint[];
}

const round = (v: number) => Math.round(v * 10) / 10;

/** Nearest-rank percentiles of `values` (sorted here); nulls when there is none. */
export function percentiles(values: ArrayLike<number>): Percentiles {
  const a = Float64Array.from(values).filter((v) => !Number.isNaN(v)).sort();
  if (a.length === 0) return { p50: null, p90: null, p99: null, max: null };
  const at = (p: number) => round(a[Math.min(a.length - 1, Math.max(0, Math.ceil(p * a.length) - 1))]!);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(a[a.length - 1]!) };
}

const ANSWERED = OUTCOMES.indexOf('answered');
const FALLBACK = OUTCOMES.indexOf('fallback');
const FAILED = OUTCOMES.indexOf('failed');
const LIMITED = OUTCOMES.indexOf('rate_limited');

function counts(r: StageResult): RequestCounts {
  const c: RequestCounts = { sent: r.columns.n, answered: 0, fallback: 0, rate_limited: 0, refused: 0, failed: 0, lost: 0 };
  for (let i = 0; i < r.columns.n; i++) {
    const o = r.columns.outcome[i]!;
    if (o === LOST) c.lost++;
    else c[OUTCOMES[o]!]++;
  }
  return c;
}

function add(a: RequestCounts, b: RequestCounts): RequestCounts {
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof RequestCounts)[]) out[k] += b[k];
  return out;
}

interface Derived {
  ttft: number[];
  tpot: number[];
  e2e: number[];
  tokens: number;
  good: number;
}

function derive(r: StageResult, slo: Slo): Derived {
  const c = r.columns;
  const d: Derived = { ttft: [], tpot: [], e2e: [], tokens: 0, good: 0 };
  for (let i = 0; i < c.n; i++) {
    if (c.outcome[i] !== ANSWERED) continue;
    const e2e = c.e2eMs[i]!;
    const tokens = c.outputTokens[i]!;
    d.tokens += tokens;
    d.e2e.push(e2e);
    const streamed = c.stream[i] === 1 && !Number.isNaN(c.ttftMs[i]!);
    const ttft = streamed ? c.ttftMs[i]! : Number.NaN;
    const tpot = streamed && tokens > 1 ? (e2e - ttft) / (tokens - 1) : Number.NaN;
    if (streamed) {
      d.ttft.push(ttft);
      if (!Number.isNaN(tpot)) d.tpot.push(tpot);
    }
    // A non-streamed answer has no token timing: only its e2e can be held to an SLO.
    const good =
      (!streamed || slo.ttft === undefined || ttft <= slo.ttft) &&
      (!streamed || slo.tpot === undefined || Number.isNaN(tpot) || tpot <= slo.tpot) &&
      (!streamed || slo.itl === undefined || !(c.itlMaxMs[i]! > slo.itl)) &&
      (slo.e2e === undefined || e2e <= slo.e2e);
    if (good) d.good++;
  }
  return d;
}

function lags(r: StageResult): Float64Array {
  const c = r.columns;
  const out = new Float64Array(c.n);
  for (let i = 0; i < c.n; i++) out[i] = Math.max(0, c.sentMs[i]! - c.scheduledMs[i]!);
  return out;
}

function timeline(results: StageResult[], open: boolean): TimelinePoint[] {
  let last = 0;
  for (const r of results) last = Math.max(last, r.endMs);
  const seconds = Math.ceil(last / 1000) + 1;
  const points: TimelinePoint[] = [];
  const ttft: number[][] = [];
  const e2e: number[][] = [];
  for (let t = 0; t < seconds; t++) {
    points.push({ t, sent: 0, answered: 0, fallback: 0, failed: 0, rate_limited: 0, output_tokens: 0, ttft_p50_ms: null, e2e_p50_ms: null, e2e_p99_ms: null, lag_max_ms: null });
    ttft.push([]);
    e2e.push([]);
  }
  for (const r of results) {
    const c = r.columns;
    for (let i = 0; i < c.n; i++) {
      const s = Math.floor(c.sentMs[i]! / 1000);
      if (s >= 0 && s < seconds) {
        const p = points[s]!;
        p.sent++;
        if (open) p.lag_max_ms = Math.max(p.lag_max_ms ?? 0, round(c.sentMs[i]! - c.scheduledMs[i]!));
      }
      const o = c.outcome[i]!;
      if (o === LOST) continue;
      const at = Math.min(seconds - 1, Math.floor((c.sentMs[i]! + c.e2eMs[i]!) / 1000));
      const p = points[at]!;
      if (o === ANSWERED) {
        p.answered++;
        p.output_tokens += c.outputTokens[i]!;
        e2e[at]!.push(c.e2eMs[i]!);
        if (!Number.isNaN(c.ttftMs[i]!)) ttft[at]!.push(c.ttftMs[i]!);
      } else if (o === FALLBACK) p.fallback++;
      else if (o === FAILED) p.failed++;
      else if (o === LIMITED) p.rate_limited++;
    }
  }
  for (let t = 0; t < seconds; t++) {
    const q = percentiles(e2e[t]!);
    points[t]!.e2e_p50_ms = q.p50;
    points[t]!.e2e_p99_ms = q.p99;
    points[t]!.ttft_p50_ms = percentiles(ttft[t]!).p50;
  }
  return points;
}

export interface SummaryInput {
  target: string;
  arrivals: { kind: 'open'; rates: number[]; burstiness: number } | { kind: 'closed'; connections: number };
  startedAt: Date;
  slo: Slo;
  results: StageResult[];
  chaos: ChaosRecord[];
}

export function summarize(input: SummaryInput): LoadSummary {
  const { results, slo } = input;
  let requests: RequestCounts = { sent: 0, answered: 0, fallback: 0, rate_limited: 0, refused: 0, failed: 0, lost: 0 };
  const status: Record<string, number> = {};
  const kinds: Record<string, number> = {};
  const transport: Record<string, number> = {};
  let wrong = 0;
  let broken = 0;
  let elapsed = 0;
  const all: Derived = { ttft: [], tpot: [], e2e: [], tokens: 0, good: 0 };
  const allLags: number[] = [];
  const itl: number[] = [];
  const stages: StageSummary[] = [];
  results.forEach((r, si) => {
    const c = r.columns;
    const n = counts(r);
    requests = add(requests, n);
    for (let i = 0; i < c.n; i++) {
      if (c.outcome[i] !== LOST) {
        const key = c.status[i] === 0 ? 'transport_error' : String(c.status[i]);
        status[key] = (status[key] ?? 0) + 1;
      }
      const kind = KINDS[c.kind[i]!]!;
      kinds[kind] = (kinds[kind] ?? 0) + 1;
      wrong += c.wrong[i]!;
      if (c.outcome[i] === FAILED && c.status[i] === 200) broken++;
    }
    for (const [k, v] of Object.entries(r.errors)) transport[k] = (transport[k] ?? 0) + v;
    const d = derive(r, slo);
    const seconds = Math.max(0.001, (r.endMs - r.startMs) / 1000);
    elapsed += seconds;
    all.ttft.push(...d.ttft);
    all.tpot.push(...d.tpot);
    all.e2e.push(...d.e2e);
    all.tokens += d.tokens;
    all.good += d.good;
    const lag = lags(r);
    for (const v of lag) allLags.push(v);
    for (const v of r.itlMs) itl.push(v);
    const a = input.arrivals;
    stages.push({
      rate: a.kind === 'open' ? a.rates[si]! : null,
      connections: a.kind === 'closed' ? a.connections : null,
      duration_s: round(seconds),
      requests: n,
      requests_per_s: round((n.sent - n.lost) / seconds),
      output_tokens_per_s: round(d.tokens / seconds),
      goodput_rps: round(d.good / seconds),
      ttft_ms: percentiles(d.ttft),
      e2e_ms: percentiles(d.e2e),
      schedule_lag_ms: a.kind === 'open' ? percentiles(lag) : { p50: null, p90: null, p99: null, max: null },
    });
  });
  const e = Math.max(0.001, elapsed);
  return {
    target: input.target,
    arrivals:
      input.arrivals.kind === 'open'
        ? `open loop, ${input.arrivals.rates.join(', ')} requests/s, burstiness ${input.arrivals.burstiness}`
        : `closed loop, ${input.arrivals.connections} connections`,
    started_at: input.startedAt.toISOString(),
    duration_s: round(elapsed),
    requests,
    wrong,
    broken_streams: broken,
    status,
    kinds,
    latency_ms: { ttft: percentiles(all.ttft), itl: percentiles(itl), tpot: percentiles(all.tpot), e2e: percentiles(all.e2e) },
    requests_per_s: round((requests.sent - requests.lost) / e),
    output_tokens_per_s: round(all.tokens / e),
    goodput_rps: round(all.good / e),
    slo_ms: slo,
    schedule_lag_ms: input.arrivals.kind === 'open' ? percentiles(allLags) : { p50: null, p90: null, p99: null, max: null },
    generator_nice: results[0]?.threadNice ?? null,
    stages,
    chaos: input.chaos,
    transport_errors: transport,
    timeline: timeline(results, input.arrivals.kind === 'open'),
  };
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

const ms = (v: number | null) => (v === null ? '-' : String(v));
const pct = (p: Percentiles) => `${ms(p.p50)} / ${ms(p.p90)} / ${ms(p.p99)}`;

export function formatTable(s: LoadSummary): string {
  const r = s.requests;
  const rows: [string, string][] = [
    ['target', s.target],
    ['arrivals', s.arrivals],
    ['duration', `${s.duration_s.toFixed(1)} s`],
    ['requests sent', String(r.sent)],
    ['answered (worker / fallback)', `${r.answered} / ${r.fallback}`],
    ['rate-limited / refused / failed', `${r.rate_limited} / ${r.refused} / ${r.failed}`],
    ['lost (no outcome at the end)', r.lost === 0 ? '0' : `${r.lost}  <-- requests without an outcome`],
    ['wrong answers', String(s.wrong)],
    ['broken streams (in failed)', String(s.broken_streams)],
    ['status codes', Object.entries(s.status).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'],
    ['requests/s', s.requests_per_s.toFixed(1)],
    ['output tokens/s', s.output_tokens_per_s.toFixed(1)],
    [`goodput (${Object.entries(s.slo_ms).map(([k, v]) => `${k}<=${v}`).join(', ')} ms)`, `${s.goodput_rps.toFixed(1)} requests/s`],
    ['ttft p50 / p90 / p99', `${pct(s.latency_ms.ttft)} ms`],
    ['itl p50 / p90 / p99', `${pct(s.latency_ms.itl)} ms`],
    ['tpot p50 / p90 / p99', `${pct(s.latency_ms.tpot)} ms`],
    ['e2e p50 / p90 / p99', `${pct(s.latency_ms.e2e)} ms`],
    ['schedule lag p50 / p99 / max', `${ms(s.schedule_lag_ms.p50)} / ${ms(s.schedule_lag_ms.p99)} / ${ms(s.schedule_lag_ms.max)} ms${s.generator_nice === null ? '' : ` (generator at nice ${s.generator_nice})`}`],
  ];
  const out = [table(['measure', 'value'], rows)];
  if (s.stages.length > 1) {
    out.push(
      table(
        ['rate', 'sent', 'req/s', 'tok/s', 'goodput', 'ttft p50/p99', 'e2e p50/p99', 'lag p99', 'failed', 'lost'],
        s.stages.map((st) => [
          st.rate === null ? `${st.connections} conn` : String(st.rate),
          String(st.requests.sent),
          st.requests_per_s.toFixed(1),
          st.output_tokens_per_s.toFixed(1),
          st.goodput_rps.toFixed(1),
          `${ms(st.ttft_ms.p50)} / ${ms(st.ttft_ms.p99)}`,
          `${ms(st.e2e_ms.p50)} / ${ms(st.e2e_ms.p99)}`,
          ms(st.schedule_lag_ms.p99),
          String(st.requests.failed),
          String(st.requests.lost),
        ]),
      ),
    );
  }
  if (s.chaos.length > 0) {
    out.push(table(['at s', 'action', 'done', 'recovered s'], s.chaos.map((c) => [String(c.at_s), c.action, c.done, c.recovered_s === null ? 'not recovered' : c.recovered_s.toFixed(2)])));
  }
  return out.join('\n\n');
}
