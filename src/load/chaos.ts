/**
 * Faults applied to the local stack at set times of the run (`--chaos kill-worker@10,...`), and
 * what "recovered" means for each:
 *
 * - `kill-worker`: SIGKILL one worker (in turn: the first, then the next), then start it again
 *   on its port as a supervisor would. Recovered when the gateway's pool has it healthy again
 *   and the breaker is closed (GET /admin/status).
 * - `stop-redis`: SIGKILL the redis-server. Recovered when the gateway's limiter decides
 *   locally (its outage mode) instead of failing on Redis.
 * - `start-redis`: start it again on its port. Recovered when the limiter decides in Redis
 *   again and the degrade switch is shared through Redis: the buckets are shared once more.
 * - `degrade-forced` / `degrade-auto`: PUT /admin/degrade. Recovered at the send time of the
 *   first request from which on, until the next event, every answer came from the fallback
 *   (forced) or from a worker (auto): the answers have switched. Read from the run's results.
 *
 * Polling is every 100 ms, up to 30 s; an event that has not recovered by then has
 * `recovered_s: null`.
 */
import type { LocalStack } from './local-stack.js';

export const CHAOS_ACTIONS = ['kill-worker', 'stop-redis', 'start-redis', 'degrade-forced', 'degrade-auto'] as const;
export type ChaosAction = (typeof CHAOS_ACTIONS)[number];

export interface ChaosRecord {
  at_s: number;
  action: ChaosAction;
  /** What was done, in words. */
  done: string;
  /** Seconds from the event until recovered; null: not within the time allowed. */
  recovered_s: number | null;
  /** When the event was applied, ms from the start of the run (may trail `at_s` a little). */
  applied_ms: number;
  /** What recovery was measured as. */
  recovered_when: string;
}

interface AdminStatus {
  breaker: string;
  workers: { url: string; healthy: boolean }[];
  degrade: { mode: string; store: string };
  limiter: { mode: string | null; redis_connected: boolean };
}

const POLL_MS = 100;
const GIVE_UP_MS = 30_000;

export async function adminStatus(stack: Pick<LocalStack, 'url' | 'adminToken'>): Promise<AdminStatus | null> {
  try {
    const res = await fetch(`${stack.url}/admin/status`, { headers: { authorization: `Bearer ${stack.adminToken}` }, signal: AbortSignal.timeout(2000) });
    if (!res.ok) {
      await res.arrayBuffer();
      return null;
    }
    return (await res.json()) as AdminStatus;
  } catch {
    return null;
  }
}

async function until(check: (s: AdminStatus) => boolean, stack: LocalStack, sinceMs: number, nowMs: () => number): Promise<number | null> {
  while (nowMs() - sinceMs < GIVE_UP_MS) {
    const s = await adminStatus(stack);
    if (s && check(s)) return Math.round(nowMs() - sinceMs) / 1000;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return null;
}

async function setDegrade(stack: LocalStack, mode: 'forced' | 'auto'): Promise<string> {
  const res = await fetch(`${stack.url}/admin/degrade`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${stack.adminToken}` },
    body: JSON.stringify({ mode }),
  });
  const body = (await res.json()) as { store?: string };
  if (!res.ok) throw new Error(`PUT /admin/degrade answered ${res.status}`);
  return `degrade switch set to ${mode} (store: ${body.store ?? '?'})`;
}

/**
 * Applies one event and waits for its recovery (degrade events: recovery is filled in from the
 * results afterwards). `nowMs` is the run's clock.
 */
export async function applyChaos(stack: LocalStack, atS: number, action: ChaosAction, nextWorker: () => number, nowMs: () => number): Promise<ChaosRecord> {
  const applied = nowMs();
  const record: ChaosRecord = { at_s: atS, action, done: '', recovered_s: null, applied_ms: applied, recovered_when: '' };
  try {
    switch (action) {
      case 'kill-worker': {
        const i = nextWorker();
        const url = stack.workers[i]!.url;
        record.recovered_when = 'the pool has the worker healthy again and the breaker is closed';
        const { pid, readyAfterMs } = await stack.killWorker(i);
        record.done = `SIGKILL worker ${url} (pid ${pid}); started again, ready after ${(readyAfterMs / 1000).toFixed(1)} s`;
        record.recovered_s = await until((s) => s.breaker === 'closed' && s.workers.some((w) => w.url === url && w.healthy), stack, applied, nowMs);
        break;
      }
      case 'stop-redis':
        record.recovered_when = 'the limiter decides locally (its outage mode) instead of failing on Redis';
        await stack.stopRedis();
        record.done = `SIGKILL redis-server (${stack.redisUrl})`;
        record.recovered_s = await until((s) => s.limiter.mode !== null && s.limiter.mode !== 'redis', stack, applied, nowMs);
        break;
      case 'start-redis':
        record.recovered_when = 'the limiter decides in Redis again and the degrade switch is stored there: shared buckets are back';
        await stack.startRedis();
        record.done = `started redis-server again (${stack.redisUrl}), empty`;
        record.recovered_s = await until((s) => s.limiter.mode === 'redis' && s.limiter.redis_connected && s.degrade.store === 'redis', stack, applied, nowMs);
        break;
      case 'degrade-forced':
        record.recovered_when = 'from this send on, every answer comes from the fallback';
        record.done = await setDegrade(stack, 'forced');
        break;
      case 'degrade-auto':
        record.recovered_when = 'from this send on, every answer comes from a worker';
        record.done = await setDegrade(stack, 'auto');
        break;
    }
  } catch (err) {
    record.done = `failed: ${(err as Error).message}`;
  }
  return record;
}
