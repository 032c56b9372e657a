import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { assertConfigRefuses } from '../../../helpers/config-refusals.js';
import { configTable, loadConfig } from '../../../../src/shared/config.js';
import { LimitsConfigSchema } from '../../../../src/gateway/limiter/config.js';

const schema = z.object({ limits: LimitsConfigSchema });

test('defaults give a working configuration', () => {
  const { limits } = loadConfig({ prefix: 'GATEWAY', schema, env: {} });
  assert.equal(limits.enabled, true);
  assert.equal(limits.outage.policy, 'local');
  assert.equal(limits.outage.replicas, 1);
  assert.equal(limits.global.requests.perMinute, 0);
  for (const tier of ['anonymous', 'free', 'standard', 'pro']) assert.ok(limits.tiers[tier], tier);
});

test('environment variables reach nested keys', () => {
  const { limits } = loadConfig({
    prefix: 'GATEWAY',
    schema,
    env: {
      GATEWAY_LIMITS_OUTAGE_POLICY: 'fail-closed',
      GATEWAY_LIMITS_OUTAGE_REPLICAS: '4',
      GATEWAY_LIMITS_GLOBAL_TOKENS: '{"perMinute":100000,"burst":20000}',
      GATEWAY_LIMITS_TIERS: '{"gold":{"requests":{"perMinute":100,"burst":10},"tokens":{"perMinute":1000,"burst":500}},"anonymous":{"requests":{"perMinute":1,"burst":1},"tokens":{"perMinute":1,"burst":1}}}',
      GATEWAY_LIMITS_TENANTS: '{"acme":{"tokens":{"burst":800}}}',
      GATEWAY_LIMITS_ALLOW_LIST: 'ops,10.0.0.1',
    },
  });
  assert.equal(limits.outage.policy, 'fail-closed');
  assert.equal(limits.outage.replicas, 4);
  assert.deepEqual(limits.global.tokens, { perMinute: 100000, burst: 20000 });
  assert.equal(limits.tenants.acme?.tokens?.burst, 800);
  assert.deepEqual(limits.allowList, ['ops', '10.0.0.1']);
});

test('bad values stop start-up with one line naming the key', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ GATEWAY_LIMITS_OUTAGE_POLICY: 'maybe' }, /GATEWAY_LIMITS_OUTAGE_POLICY/],
    [{ GATEWAY_LIMITS_OUTAGE_REPLICAS: '0' }, /GATEWAY_LIMITS_OUTAGE_REPLICAS/],
    [{ GATEWAY_LIMITS_REFUND_FLUSH_MS: 'soon' }, /GATEWAY_LIMITS_REFUND_FLUSH_MS/],
    [{ GATEWAY_LIMITS_TENANTS: '{"acme":{"tier":"gold"}}' }, /GATEWAY_LIMITS_TENANTS/],
    [{ GATEWAY_LIMITS_TENANTS: '{"acme":{"requests":{"perMinute":-1}}}' }, /GATEWAY_LIMITS_TENANTS/],
    [{ GATEWAY_LIMITS_TENANTS: '{"acme":{"bogus":1}}' }, /GATEWAY_LIMITS_TENANTS/],
    [{ GATEWAY_LIMITS_TIERS: '{"free":{"requests":{"perMinute":1.5,"burst":1},"tokens":{"perMinute":1,"burst":1}}}' }, /GATEWAY_LIMITS_TIERS/],
    [{ GATEWAY_LIMITS_TIERS: '{"free":{"requests":{"perMinute":1,"burst":1},"tokens":{"perMinute":1,"burst":200000000}}}' }, /GATEWAY_LIMITS_TIERS/],
    [{ GATEWAY_LIMITS_TIERS: '{"bad name!":{}}' }, /GATEWAY_LIMITS_TIERS/],
    [{ GATEWAY_LIMITS_TIERS: 'not json' }, /GATEWAY_LIMITS_TIERS/],
    [{ GATEWAY_LIMITS_GLOBAL_REQUESTS: '{"perMinute":"many"}' }, /GATEWAY_LIMITS_GLOBAL_REQUESTS/],
    [{ GATEWAY_LIMITS_GLOBAL_CLUSTER_SLICES: '0' }, /GATEWAY_LIMITS_GLOBAL_CLUSTER_SLICES/],
  ];
  assertConfigRefuses('GATEWAY', schema, cases);
});

test('every key is documented with a default', () => {
  const table = configTable(schema, 'GATEWAY');
  for (const key of [
    'GATEWAY_LIMITS_ENABLED',
    'GATEWAY_LIMITS_TIERS',
    'GATEWAY_LIMITS_TENANTS',
    'GATEWAY_LIMITS_ALLOW_LIST',
    'GATEWAY_LIMITS_GLOBAL_REQUESTS',
    'GATEWAY_LIMITS_GLOBAL_TOKENS',
    'GATEWAY_LIMITS_GLOBAL_CLUSTER_SLICES',
    'GATEWAY_LIMITS_OUTAGE_POLICY',
    'GATEWAY_LIMITS_OUTAGE_REPLICAS',
    'GATEWAY_LIMITS_OUTAGE_RETRY_MS',
    'GATEWAY_LIMITS_REFUND_FLUSH_MS',
  ]) {
    const row = table.split('\n').find((l) => l.startsWith(`| \`${key}\``));
    assert.ok(row, `${key} is in the table`);
    assert.doesNotMatch(row, /\(required\)/, `${key} has a default`);
  }
});
