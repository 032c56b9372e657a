/**
 * Drives the workload with autocannon: one request template whose setupRequest picks the next
 * request of the mix, and whose onResponse classifies the answer (autocannon keeps one request
 * in flight per connection, so the connection's context knows which request an answer is for).
 * Bounded by both the duration and the request count.
 */
import autocannon from 'autocannon';
import { buildRequest, classify, pickKind, type LoadRequest, type Outcome, type RequestKind } from './workload.js';
import { degradedShare, type LoadSummary } from './report.js';
import type { LoadFlags } from './flags.js';

const OUTCOMES: Outcome[] = ['ok', 'degraded', 'refused', 'rate_limited', 'unavailable', 'wrong'];

export async function runLoad(flags: LoadFlags): Promise<LoadSummary> {
  const outcomes = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<Outcome, number>;
  const kinds: Partial<Record<RequestKind, number>> = {};
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  if (flags['api-key']) headers.authorization = `Bearer ${flags['api-key']}`;
  const options = { stream: flags.stream, maxTokens: flags['max-tokens'], model: flags.model };
  const result = await autocannon({
    url: flags.url,
    connections: flags.connections,
    duration: flags.duration,
    maxOverallRequests: flags['max-requests'],
    // A streamed answer of --max-tokens tokens may take a while; a stuck one counts as a timeout.
    timeout: 120,
    requests: [
      {
        method: 'POST',
        setupRequest: (req, context) => {
          const r = buildRequest(pickKind(), options);
          (context as { current?: LoadRequest }).current = r;
          kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
          return { ...req, method: r.method, path: r.path, body: r.body, headers };
        },
        onResponse: (status, _body, context, resHeaders) => {
          const r = (context as { current?: LoadRequest }).current;
          if (r) outcomes[classify(r, status, (resHeaders ?? {}) as Record<string, unknown>)]++;
        },
      },
    ],
  });
  const status: Record<string, number> = {};
  for (const [code, s] of Object.entries(result.statusCodeStats ?? {})) status[code] = s.count ?? 0;
  const requests = Object.values(status).reduce((a, b) => a + b, 0);
  return {
    url: flags.url,
    durationSeconds: result.duration,
    connections: flags.connections,
    requests,
    rps: result.duration > 0 ? requests / result.duration : 0,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
    status,
    outcomes,
    kinds,
    degradedShare: degradedShare(outcomes),
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

