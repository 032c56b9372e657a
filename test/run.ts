/**
 * `npm test`: brings up what the tests need, then runs node's test runner over the compiled
 * tests. A private redis-server on a free port is started for the run (its URL is in
 * TEST_REDIS_URL); tests that must stop Redis start their own with test/helpers/redis.ts.
 *
 *   npm test                    every test
 *   npm test -- unit/config     only files whose path contains one of the arguments
 */
import { spawnSync, spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPrivateRedis } from './helpers/redis.js';

const here = fileURLToPath(new URL('.', import.meta.url));

function has(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

function ensureRedisServer(): void {
  if (has('redis-server')) return;
  const root = process.getuid?.() === 0;
  if (root && has('apt-get')) {
    console.log('redis-server is missing; installing Debian package redis-server');
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    const r = spawnSync('apt-get', ['install', '-y', '-qq', 'redis-server'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status === 0 && has('redis-server')) return;
  }
  console.error('redis-server is missing: sudo apt-get install -y redis-server');
  process.exit(1);
}

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<void> {
  ensureRedisServer();
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
