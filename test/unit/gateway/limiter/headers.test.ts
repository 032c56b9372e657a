import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openaiDuration, rateLimitHeaders } from '../../../../src/gateway/limiter/headers.js';
import { KeySpace } from '../../../../src/gateway/limiter/keys.js';
import type { Decision } from '../../../../src/gateway/limiter/limiter.js';

test('durations are written the way OpenAI writes them', () => {
  assert.equal(openaiDuration(0), '0ms');
  assert.equal(openaiDuration(17.2), '18ms');
  assert.equal(openaiDuration(1000), '1s');
  assert.equal(openaiDuration(1500), '1.5s');
  assert.equal(openaiDuration(360_000), '6m0s');
  assert.equal(openaiDuration(61_250), '1m1.25s');
  assert.equal(openaiDuration(3_723_000), '1h2m3s');
});

function decision(buckets: Decision['buckets']): Decision {
  return {
    outcome: 'allowed',
    allowed: true,
    capacity: null,
    source: 'redis',
    subject: {
      id: 't:acme',
      label: 'tenant "acme"',
      tier: 'free',
      allowListed: false,
      requests: { perMinute: 60, burst: 20 },
      tokens: { perMinute: 40_000, burst: 16_384 },
      keys: new KeySpace('chat:', 0).keys('t:acme'),
      specs: [],
    },
    tokens: 0,
    buckets,
    limitedBy: null,
    retryAfterMs: 0,
    reservation: null,
  };
}

test('IETF draft and OpenAI headers describe the tenant buckets', () => {
  const h = rateLimitHeaders(
    decision([
      { name: 'requests', limit: { perMinute: 60, burst: 20 }, remaining: 19, resetMs: 1000, waitMs: 0 },
      { name: 'tokens', limit: { perMinute: 40_000, burst: 16_384 }, remaining: 15_000, resetMs: 2_076, waitMs: 0 },
      { name: 'global-tokens', limit: { perMinute: 1, burst: 1 }, remaining: 0, resetMs: 9, waitMs: 0 },
    ]),
  );
  assert.equal(h['ratelimit-policy'], '"requests";q=20;w=20;qu="request", "tokens";q=16384;w=25');
  assert.equal(h.ratelimit, '"requests";r=19;t=1, "tokens";r=15000;t=3');
  assert.equal(h['x-ratelimit-limit-requests'], 20);
  assert.equal(h['x-ratelimit-remaining-requests'], 19);
  assert.equal(h['x-ratelimit-reset-requests'], '1s');
  assert.equal(h['x-ratelimit-limit-tokens'], 16_384);
  assert.equal(h['x-ratelimit-remaining-tokens'], 15_000);
  assert.equal(h['x-ratelimit-reset-tokens'], '2.076s');
  assert.ok(!Object.keys(h).some((k) => k.includes('global')), 'the global buckets are not shown');
});

test('a decision made without buckets (fail-open) shows the policy only', () => {
  const h = rateLimitHeaders(decision([]));
  assert.deepEqual(Object.keys(h), ['ratelimit-policy']);
});
