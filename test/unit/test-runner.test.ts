/**
 * The test runner's ensure step: on a machine without the Debian packages and without apt-get,
 * `npm test` stops with the one line that installs them, before it runs any test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HELM_TEMPLATE_DIR, PROJECT_ROOT } from '../helpers/paths.js';
import { helmTemplateWanted, installLine, missingPackages, systemPackages } from '../helpers/system-packages.js';

test('every package the tests use is named once, with a reason; Go only where helm-template is the chart renderer', () => {
  const names = systemPackages().map((p) => p.pkg);
  assert.deepEqual([...new Set(names)], names);
  const go = ['golang-go', 'golang-github-masterminds-sprig-dev', 'golang-github-ghodss-yaml-dev', 'golang-gopkg-yaml.v3-dev'];
  for (const want of ['redis-server', 'prometheus', 'chromium', ...(helmTemplateWanted() ? go : [])]) assert.ok(names.includes(want), want);
  if (!helmTemplateWanted()) for (const pkg of go) assert.ok(!names.includes(pkg), pkg);
  assert.ok(systemPackages().every((p) => p.why.length > 0));
});

test('this machine has them all (the runner installed or found them)', () => {
  assert.deepEqual(missingPackages().map((p) => p.pkg), []);
});

test('without the packages and without apt-get, the runner stops with the one line that installs them', () => {
  // A PATH with node and sh alone: no redis-server, promtool, go, dpkg-query or apt-get.
  const bin = mkdtempSync(join(tmpdir(), 'ensure-path-'));
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  let r;
  try {
    r = spawnSync(join(bin, 'node'), [join(PROJECT_ROOT, 'dist/test/run.js'), 'no-such-test-file'], {
      encoding: 'utf8',
      env: { PATH: bin, HOME: process.env.HOME ?? '/tmp' },
    });
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
  assert.equal(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  // No helm on that PATH either, so helm-template's packages are wanted exactly when its sources are here.
  const expected = systemPackages().filter((p) => existsSync(join(HELM_TEMPLATE_DIR, 'main.go')) || !p.pkg.startsWith('golang-'));
  assert.ok(lines[0]!.endsWith(installLine(expected)), lines[0]);
  assert.equal(r.stdout, '');
});
