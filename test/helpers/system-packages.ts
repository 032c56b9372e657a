/**
 * The Debian packages the tests use (redis-server, promtool, chromium, the Go packages of
 * helm-template), and how to tell whether each is there. `npm test` installs
 * the missing ones when it runs as root with apt-get, and otherwise stops with the one line that
 * installs them (test/run.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HELM_TEMPLATE_DIR } from './paths.js';

export interface SystemPackage {
  /** Debian package name. */
  pkg: string;
  /** What needs it. */
  why: string;
  present(): boolean;
}

export function hasCommand(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** True when dpkg says the package is installed (Go library packages install no command). */
function dpkgInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/**
 * The chart tests render with helm when it is on PATH; otherwise with helm-template when its
 * sources are beside the checkout, and only then are its Go packages needed.
 */
export function helmTemplateWanted(): boolean {
  return !hasCommand('helm') && existsSync(join(HELM_TEMPLATE_DIR, 'main.go'));
}

const HELM_TEMPLATE_PACKAGES: SystemPackage[] = [
  { pkg: 'golang-go', why: 'builds helm-template for the chart tests', present: () => hasCommand('go') },
  ...['golang-github-masterminds-sprig-dev', 'golang-github-ghodss-yaml-dev', 'golang-gopkg-yaml.v3-dev'].map((pkg) => ({
    pkg,
    why: 'Go sources helm-template is built from',
    present: () => dpkgInstalled(pkg),
  })),
];

export function systemPackages(): SystemPackage[] {
  return [
    { pkg: 'redis-server', why: 'private Redis for the tests', present: () => hasCommand('redis-server') },
    { pkg: 'prometheus', why: 'promtool: scrape config, alert rules and their unit tests', present: () => hasCommand('promtool') },
    // The browser tests launch Debian's /usr/bin/chromium (test/helpers/browser.ts), not a Playwright download.
    { pkg: 'chromium', why: "the operator console's browser tests (driven by playwright-core)", present: () => hasCommand('chromium') },
    ...(helmTemplateWanted() ? HELM_TEMPLATE_PACKAGES : []),
  ];
}

export function missingPackages(): SystemPackage[] {
  return systemPackages().filter((p) => !p.present());
}

export function installLine(missing: SystemPackage[]): string {
  return `sudo apt-get install -y ${missing.map((p) => p.pkg).join(' ')}`;
}

/**
 * Installs what is missing when running as root with apt-get; returns what is still missing.
 * One `apt-get update` and one `apt-get install` for all of them.
 */
export function ensureSystemPackages(log: (line: string) => void = console.log): SystemPackage[] {
  const missing = missingPackages();
  if (missing.length === 0) return [];
  if (process.getuid?.() === 0 && hasCommand('apt-get')) {
    const names = missing.map((p) => p.pkg);
    log(`installing Debian packages the tests need: ${names.join(' ')}`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], { stdio: 'inherit', env });
  }
  return missingPackages();
}
