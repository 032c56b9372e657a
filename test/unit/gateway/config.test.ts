import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, describeConfig } from '../../../src/shared/config.js';
import { GatewayConfigSchema, loadGatewayConfig } from '../../../src/gateway/config.js';

test('defaults, environment and overrides', () => {
  const c = loadGatewayConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.auth.anonymous, false);
  assert.equal(c.degrade.mode, 'auto');
  assert.equal(c.redis.keyPrefix, 'chat:');
  const e = loadGatewayConfig(
    {
      GATEWAY_WORKERS_URLS: 'http://127.0.0.1:9001,http://127.0.0.1:9002',
      GATEWAY_BREAKER_RESET_TIMEOUT_MS: '2500',
      GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: 'a'.repeat(64), tenant: 't1', tier: 'pro' }]),
      GATEWAY_DEGRADE_MODE: 'forced',
    },
    { auth: { anonymous: true } },
  );
  assert.deepEqual(e.workers.urls, ['http://127.0.0.1:9001', 'http://127.0.0.1:9002']);
  assert.equal(e.breaker.resetTimeoutMs, 2500);
  assert.equal(e.auth.keys[0]!.tenant, 't1');
  assert.equal(e.auth.anonymous, true);
  assert.equal(e.degrade.mode, 'forced');
});

test('PORT is the port when GATEWAY_PORT is not set', () => {
  assert.equal(loadGatewayConfig({ PORT: '3000' }).port, 3000);
  assert.equal(loadGatewayConfig({ PORT: '3000', GATEWAY_PORT: '4000' }).port, 4000);
  assert.equal(loadGatewayConfig({ GATEWAY_PORT: '4000' }).port, 4000);
  assert.throws(() => loadGatewayConfig({ PORT: 'eighty' }), (e: unknown) => e instanceof ConfigError && /^invalid configuration: PORT \(port\)/.test(e.message));
});

test('a bad value stops start-up with one line naming the variable', () => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ GATEWAY_PORT: 'eighty' }, /GATEWAY_PORT/],
    [{ GATEWAY_PORT: '70000', PORT: '80' }, /GATEWAY_PORT/],
    [{ GATEWAY_DEGRADE_MODE: 'sometimes' }, /GATEWAY_DEGRADE_MODE/],
    [{ GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: 'plain-key', tenant: 't', tier: 'x' }]) }, /GATEWAY_AUTH_KEYS.*SHA-256/],
    [{ GATEWAY_AUTH_KEYS: '[{' }, /GATEWAY_AUTH_KEYS is not valid JSON/],
    [{ GATEWAY_WORKERS_DNS: 'no-port' }, /GATEWAY_WORKERS_DNS/],
    [{ GATEWAY_AUTH_ADMIN_TOKEN_SHA256: 'secret' }, /GATEWAY_AUTH_ADMIN_TOKEN_SHA256/],
  ];
  for (const [env, re] of bad) {
    assert.throws(() => loadGatewayConfig(env), (e: unknown) => e instanceof ConfigError && re.test(e.message) && !e.message.includes('\n'), JSON.stringify(env));
  }
});

test('every key is documented with a default', () => {
  for (const row of describeConfig(GatewayConfigSchema, 'GATEWAY')) {
    assert.ok(row.description.length > 0, row.env);
    assert.notEqual(row.default, '', row.env);
  }
});
