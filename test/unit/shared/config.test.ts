import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { assertConfigRefuses } from '../../helpers/config-refusals.js';
import { configTable, describeConfig, envName, loadConfig } from '../../../src/shared/config.js';

const schema = z.object({
  port: z.number().int().min(1).max(65535).default(8080).describe('HTTP port'),
  host: z.string().default('127.0.0.1').describe('bind address'),
  debug: z.boolean().default(false).describe('debug mode'),
  mode: z.enum(['auto', 'forced', 'off']).default('auto').describe('degrade mode'),
  urls: z.array(z.string().url()).default([]).describe('worker URLs'),
  keys: z.record(z.string(), z.object({ tenant: z.string() })).default({}).describe('API keys'),
  breaker: z
    .object({
      timeoutMs: z.number().int().min(1).default(30000).describe('call timeout'),
      volumeThreshold: z.number().int().min(0).default(5).describe('calls before it may open'),
    })
    .prefault({}),
  token: z.string().optional().describe('admin token'),
});

test('defaults apply when nothing is set', () => {
  const c = loadConfig({ prefix: 'T', schema, env: {} });
  assert.equal(c.port, 8080);
  assert.equal(c.breaker.timeoutMs, 30000);
  assert.deepEqual(c.urls, []);
  assert.equal(c.token, undefined);
});

test('environment variables are converted by the type of their key', () => {
  const c = loadConfig({
    prefix: 'T',
    schema,
    env: {
      T_PORT: '9090',
      T_DEBUG: 'yes',
      T_MODE: 'forced',
      T_URLS: 'http://a:1, http://b:2',
      T_KEYS: '{"abc":{"tenant":"t1"}}',
      T_BREAKER_TIMEOUT_MS: '500',
    },
  });
  assert.equal(c.port, 9090);
  assert.equal(c.debug, true);
  assert.equal(c.mode, 'forced');
  assert.deepEqual(c.urls, ['http://a:1', 'http://b:2']);
  assert.deepEqual(c.keys, { abc: { tenant: 't1' } });
  assert.equal(c.breaker.timeoutMs, 500);
  assert.equal(c.breaker.volumeThreshold, 5);
});

test('the file sits under the environment', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ port: 7000, host: '0.0.0.0', breaker: { volumeThreshold: 9 } }));
  const c = loadConfig({ prefix: 'T', schema, env: { T_CONFIG: file, T_PORT: '7001' } });
  assert.equal(c.port, 7001);
  assert.equal(c.host, '0.0.0.0');
  assert.equal(c.breaker.volumeThreshold, 9);
  assert.equal(c.breaker.timeoutMs, 30000);
});

test('a bad value is one line naming the variable and the value', () => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ T_PORT: 'abc' }, /^invalid configuration: T_PORT \(port\): .*got "abc"$/],
    [{ T_PORT: '70000' }, /T_PORT \(port\)/],
    [{ T_MODE: 'sometimes' }, /T_MODE \(mode\)/],
    [{ T_DEBUG: 'maybe' }, /T_DEBUG \(debug\)/],
    [{ T_URLS: 'not a url' }, /T_URLS \(urls\.0\)/],
    [{ T_KEYS: '{broken' }, /T_KEYS is not valid JSON/],
    [{ T_KEYS: '{"k":{"tenant":5}}' }, /T_KEYS \(keys\.k\.tenant\)/],
    [{ T_BREAKER_TIMEOUT_MS: '-1' }, /T_BREAKER_TIMEOUT_MS \(breaker\.timeoutMs\)/],
    [{ T_CONFIG: '/nonexistent/file.json' }, /T_CONFIG=\/nonexistent\/file\.json cannot be read \(ENOENT\)/],
  ];
  assertConfigRefuses('T', schema, bad);
});

test('names and docs cover every leaf key with its default', () => {
  assert.equal(envName('GATEWAY', ['breaker', 'resetTimeoutMs']), 'GATEWAY_BREAKER_RESET_TIMEOUT_MS');
  const rows = describeConfig(schema, 'T');
  assert.deepEqual(
    rows.map((r) => r.env),
    ['T_PORT', 'T_HOST', 'T_DEBUG', 'T_MODE', 'T_URLS', 'T_KEYS', 'T_BREAKER_TIMEOUT_MS', 'T_BREAKER_VOLUME_THRESHOLD', 'T_TOKEN'],
  );
  assert.equal(rows.find((r) => r.env === 'T_PORT')?.default, '8080');
  assert.equal(rows.find((r) => r.env === 'T_TOKEN')?.default, '(unset)');
  assert.match(configTable(schema, 'T'), /\| `T_MODE` \| `auto` \\\| `forced` \\\| `off` \| `auto` \| degrade mode \|/);
});
