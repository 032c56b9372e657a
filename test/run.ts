/**
 * `npm test`: brings up what the tests need, then runs node's test runner over the compiled
 * tests. A private redis-server on a free port is started for the run (its URL is in
 * TEST_REDIS_URL); tests that must stop Redis start their own with test/helpers/redis.ts.
 * Missing Debian packages are installed first when running as root (test/helpers/system-packages.ts).
 *
 *   npm test                    every test
 *   npm test -- unit/config     only files whose path contains one of the arguments
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { helmTemplateBin } from './helpers/helm-template.js';
import { startPrivateRedis } from './helpers/redis.js';
import { ensureSystemPackages, helmTemplateWanted, installLine } from './helpers/system-packages.js';

const here = fileURLToPath(new URL('.', import.meta.url));
/** test/ in the sources (this file runs from dist/test/). */
const SOURCE_DIR = join(here, '../../test');

/**
 * Brings up the system packages the tests use (redis-server, promtool, the Go packages that
 * helm-template is built from): installed when running as root with apt-get, otherwise the run
 * stops with the one line that installs them.
 */
function ensure(): void {
  const missing = ensureSystemPackages();
  if (missing.length === 0) return;
  console.error(`the tests need ${missing.map((p) => `${p.pkg} (${p.why})`).join(', ')}; install with: ${installLine(missing)}`);
  process.exit(1);
}

/**
 * The compiled tests under `dir` whose TypeScript source still exists: tsc never deletes what it
 * emitted for a file that was since renamed or removed, and such a leftover would run too.
 */
function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js') && existsSync(join(SOURCE_DIR, relative(here, p)).replace(/\.js$/, '.ts'))) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<void> {
  ensure();
  const filters = process.argv.slice(2);
  const files = ['unit', 'integration', 'e2e']
    .flatMap((d) => {
      try {
        return findTests(join(here, d));
      } catch {
        return [];
      }
    })
    .filter((f) => filters.length === 0 || filters.some((x) => relative(here, f).includes(x)));
  if (files.length === 0) {
    console.error(`no test files match ${filters.join(' ')}`);
    process.exit(1);
  }
  // Chart tests render with helm-template where there is no helm: build it once for the whole run (cached by source hash).
  if (helmTemplateWanted() && files.some((f) => relative(here, f).includes('helm'))) helmTemplateBin();
  const redis = await startPrivateRedis();
  const child = spawn(process.execPath, ['--enable-source-maps', '--test', '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    env: { ...process.env, TEST_REDIS_URL: redis.url, NODE_ENV: 'test' },
  });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code: number = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
  await redis.stop();
  process.exit(code);
}

void main();
