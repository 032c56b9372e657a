/**
 * The console's files as the gateway serves them (inject): the page loads without a token and
 * holds no secret, every response carries the strict Content-Security-Policy and nosniff, the
 * page has no inline script or style, every file it names (and every module the scripts import)
 * is served from the gateway itself, and no URL reaches anything but the fixed list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConsoleAssets } from '../../src/gateway/console/assets.js';
import { CONSOLE_CSP } from '../../src/gateway/routes/console.js';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { TEST_ADMIN_TOKEN, build } from '../helpers/gateway.js';

function assertSafeHeaders(headers: Record<string, unknown>, what: string): void {
  assert.equal(headers['content-security-policy'], CONSOLE_CSP, what);
  assert.equal(headers['x-content-type-options'], 'nosniff', what);
  assert.equal(headers['x-frame-options'], 'DENY', what);
  assert.equal(headers['referrer-policy'], 'no-referrer', what);
}

test('the policy allows the gateway itself only, and no inline script or style', () => {
  const directives = new Map(CONSOLE_CSP.split('; ').map((d) => [d.split(' ')[0], d.split(' ').slice(1)]));
  assert.deepEqual(directives.get('default-src'), ["'self'"]);
  for (const d of ['script-src', 'style-src', 'connect-src', 'img-src']) assert.deepEqual(directives.get(d), ["'self'"], d);
  assert.deepEqual(directives.get('object-src'), ["'none'"]);
  assert.deepEqual(directives.get('frame-ancestors'), ["'none'"]);
  assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval|\*|http:|https:|data:/);
});

test('GET /console: the page without a token, with the policy, no secret and no inline code', async (ctx) => {
  const g = await build(ctx);
  const res = await g.inject({ method: 'GET', url: '/console' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^text\/html/);
  assertSafeHeaders(res.headers, '/console');
  assert.equal(res.headers['cache-control'], 'no-store');
  const html = res.body;
  assert.ok(!html.includes(TEST_ADMIN_TOKEN) && !html.includes(sha256Hex(TEST_ADMIN_TOKEN)), 'no secret in the page');
  assert.doesNotMatch(html, /<style|\sstyle=|\son[a-z]+=|javascript:/i, 'no inline style or handler');
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  assert.ok(scripts.length > 0);
  for (const [, attrs, body] of scripts) {
    assert.match(attrs!, /src="\/console\/assets\/[a-z-]+\.js"/);
    assert.equal(body!.trim(), '', 'no inline script');
  }
  // The controls people and tests look for, each with its label.
  for (const [id, label] of [['token', 'Admin token'], ['mode', 'Degrade mode'], ['source', 'Degrade source']]) {
    assert.match(html, new RegExp(`<label for="${id}">${label}</label>`), label);
    assert.match(html, new RegExp(`id="${id}"`), id);
  }
  assert.match(html, /<button type="submit">Apply<\/button>/);
  for (const v of ['auto', 'forced', 'off', 'kb', 'canned']) assert.match(html, new RegExp(`<option value="${v}">${v}</option>`));
});

test('every file the page names, and every module the scripts import, is served by the gateway with the same headers', async (ctx) => {
  const g = await build(ctx);
  const html = (await g.inject({ method: 'GET', url: '/console' })).body;
  const wanted = new Set([...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!));
  assert.ok([...wanted].every((u) => u.startsWith('/console/assets/')), [...wanted].join(' '));
  const seen = new Set<string>();
  while (wanted.size > 0) {
    const url = wanted.values().next().value!;
    wanted.delete(url);
    seen.add(url);
    const res = await g.inject({ method: 'GET', url });
    assert.equal(res.statusCode, 200, url);
    assertSafeHeaders(res.headers, url);
    if (url.endsWith('.js')) {
      assert.match(String(res.headers['content-type']), /^text\/javascript/, url);
      for (const m of res.body.matchAll(/\bfrom\s+'([^']+)'|\bimport\s+'([^']+)'/g)) {
        const spec = (m[1] ?? m[2])!;
        assert.match(spec, /^\.\/[a-z-]+\.js$/, `${url} imports only its siblings: ${spec}`);
        const next = `/console/assets/${spec.slice(2)}`;
        if (!seen.has(next)) wanted.add(next);
      }
      assert.doesNotMatch(res.body, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/, `${url} never writes HTML`);
    }
  }
  assert.ok(seen.has('/console/assets/main.js') && seen.has('/console/assets/api.js') && seen.has('/console/assets/console.css'));
  const css = await g.inject({ method: 'GET', url: '/console/assets/console.css' });
  assert.match(String(css.headers['content-type']), /^text\/css/);
  assert.doesNotMatch(css.body, /url\(|@import/, 'the style sheet loads nothing');
});

test('no URL reaches anything but the fixed list', async (ctx) => {
  const g = await build(ctx);
  for (const url of [
    '/console/assets/nothing.js',
    '/console/assets/..%2F..%2F..%2Fpackage.json',
    '/console/assets/%2e%2e%2fassets.js',
    '/console/assets/main.js.map',
    '/console/assets/MAIN.JS',
    `/console/assets/${'a'.repeat(65)}`,
    '/console/assets/',
    '/console/assets/%00',
    '/console/../package.json',
  ]) {
    const res = await g.inject({ method: 'GET', url });
    assert.ok(res.statusCode === 404 || res.statusCode === 400, `${url}: ${res.statusCode}`);
    assert.ok(res.json().error.code, url);
    assert.ok(!res.body.includes('"dependencies"'), url);
  }
  const bad = await g.inject({ method: 'GET', url: '/console/assets/nothing.js' });
  assert.equal(bad.headers['x-content-type-options'], 'nosniff');
  assert.equal((await g.inject({ method: 'POST', url: '/console' })).statusCode, 404);
});

test('without the compiled scripts the assets say what is missing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'console-assets-'));
  try {
    const assets = loadConsoleAssets(join(dir, 'nowhere'));
    assert.match(assets.problem!, /npm run build/);
    assert.deepEqual([...assets.files.keys()].sort(), ['console.css', 'icon.svg']);
    assert.equal(loadConsoleAssets().problem, null, 'the build made them');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
