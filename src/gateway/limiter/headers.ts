/**
 * Rate-limit response headers, from one decision:
 *
 * - `RateLimit-Policy` and `RateLimit` as in draft-ietf-httpapi-ratelimit-headers-10: one item
 *   per bucket, `q` the burst, `w` the seconds in which an empty bucket fills again, `r` the
 *   tokens left and `t` the seconds until the bucket is full;
 * - OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, the reset as a duration
 *   (`20ms`, `1.5s`, `6m0s`) the way OpenAI writes it.
 *
 * Only the tenant's own buckets are shown; the global buckets are the service's business and a
 * refusal by them is told by the 429's body and Retry-After.
 */
import type { BucketConfig } from './config.js';
import type { BucketState, Decision } from './limiter.js';

/** OpenAI-style duration: `20ms`, `1.5s`, `6m0s`, `1h2m3s`. */
export function openaiDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total < 1000) return `${total}ms`;
  const seconds = total / 1000;
  if (seconds < 60) return `${trim(seconds)}s`;
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = trim(seconds % 60);
  return h > 0 ? `${h}h${m}m${s}s` : `${m}m${s}s`;
}

function trim(n: number): string {
  return String(Math.round(n * 1000) / 1000);
}

function windowSeconds(limit: BucketConfig): number {
  return Math.ceil((limit.burst * 60) / limit.perMinute);
}

const policies = new Map<string, string>();

/** The policy field depends on the limits only, so it is built once per pair of limits. */
export function policyHeader(requests: BucketConfig, tokens: BucketConfig): string {
  const key = `${requests.burst}/${requests.perMinute}/${tokens.burst}/${tokens.perMinute}`;
  let value = policies.get(key);
  if (value === undefined) {
    value =
      `"requests";q=${requests.burst};w=${windowSeconds(requests)};qu="request", ` +
      `"tokens";q=${tokens.burst};w=${windowSeconds(tokens)}`;
    policies.set(key, value);
  }
  return value;
}

export function rateLimitHeaders(decision: Decision): Record<string, string | number> {
  const { subject } = decision;
  const headers: Record<string, string | number> = {
    'ratelimit-policy': policyHeader(subject.requests, subject.tokens),
  };
  let requests: BucketState | undefined;
  let tokens: BucketState | undefined;
  for (const b of decision.buckets) {
    if (b.name === 'requests') requests = b;
    else if (b.name === 'tokens') tokens = b;
  }
  if (!requests || !tokens) return headers; // admitted without a check (fail-open): nothing live to tell
  headers.ratelimit =
    `"requests";r=${requests.remaining};t=${Math.ceil(requests.resetMs / 1000)}, ` +
    `"tokens";r=${tokens.remaining};t=${Math.ceil(tokens.resetMs / 1000)}`;
  headers['x-ratelimit-limit-requests'] = subject.requests.burst;
  headers['x-ratelimit-remaining-requests'] = requests.remaining;
  headers['x-ratelimit-reset-requests'] = openaiDuration(requests.resetMs);
  headers['x-ratelimit-limit-tokens'] = subject.tokens.burst;
  headers['x-ratelimit-remaining-tokens'] = tokens.remaining;
  headers['x-ratelimit-reset-tokens'] = openaiDuration(tokens.resetMs);
  return headers;
}
