/** Builds a gateway app for tests: quiet logs, the fixture knowledge base, and the given config. */
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, type GatewayDeps } from '../../src/gateway/app.js';
import { gatewayConfig, type GatewayConfig } from '../../src/gateway/config.js';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { PROJECT_ROOT } from './paths.js';

export const KB_FIXTURE = join(PROJECT_ROOT, 'test/fixtures/knowledge-base.jsonl');
export const TEST_KEY = 'sk-test-tenant-a-0123456789';
export const TEST_ADMIN_TOKEN = 'admin-token-for-tests-only';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = b && typeof b === 'object' && !Array.isArray(b) && v && typeof v === 'object' && !Array.isArray(v)
      ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
      : v;
  }
  return out;
}

export function testConfig(over: DeepPartial<GatewayConfig> = {}): GatewayConfig {
  const base = {
    logLevel: 'silent',
    auth: {
      keys: [{ sha256: sha256Hex(TEST_KEY), tenant: 'tenant-a', tier: 'pro' }],
      adminTokenSha256: sha256Hex(TEST_ADMIN_TOKEN),
    },
    redis: { url: '' },
    knowledgeBase: { path: KB_FIXTURE, minScore: 1 },
    // Generous timeouts: the machine running the tests may be busy.
    workers: { healthIntervalMs: 100, healthTimeoutMs: 2000 },
  };
  return gatewayConfig(merge(base, over as Record<string, unknown>));
}

export async function testGateway(over: DeepPartial<GatewayConfig> = {}, deps: GatewayDeps = {}): Promise<FastifyInstance> {
  return buildApp(testConfig(over), { redis: null, ...deps });
}

/** A test gateway closed when the test `t` ends (fastify/demo's `build(t)`). */
export async function build(t: TestContext, over: DeepPartial<GatewayConfig> = {}, deps: GatewayDeps = {}): Promise<FastifyInstance> {
  const app = await testGateway(over, deps);
  t.after(() => app.close());
  return app;
}

export const auth = { authorization: `Bearer ${TEST_KEY}` };
export const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };

/** Parses an SSE body into its `data:` payloads (JSON, or the literal [DONE]). */
export function sseData(body: string): unknown[] {
  return body
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => b.slice(6))
    .map((d) => (d === '[DONE]' ? d : JSON.parse(d)));
}

export async function until(pred: () => boolean | Promise<boolean>, ms: number, step = 20): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, step));
  }
  return pred();
}

/** Healthy workers a running gateway reports at /readyz; -1 while it does not answer. */
export async function healthyWorkers(base: string): Promise<number> {
  try {
    return ((await (await fetch(`${base}/readyz`)).json()) as { healthy_workers: number }).healthy_workers;
  } catch {
    return -1;
  }
}
