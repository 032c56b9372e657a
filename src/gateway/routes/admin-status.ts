/**
 * `GET /admin/status`: everything the operator console shows, in one answer — the workers as the
 * pool last saw them, the degrade switch, the limiter, this replica's last minute and the
 * knowledge base. Behind the bearer admin token. Read from what the plugins decorate; costs no
 * call to a worker or to Redis (the pool's health checks and the switch's copy are in memory).
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DEGRADE_MODES, DEGRADE_SOURCES } from '../config.js';
import { OUTAGE_POLICIES } from '../limiter/config.js';

const Counts = z.record(z.string(), z.number().int().min(0));
const Bucket = z.object({ per_minute: z.number().int(), burst: z.number().int() });
const BREAKER_STATES = ['closed', 'half-open', 'open'] as const;

export const AdminStatusSchema = z.object({
  generated_at: z.string().describe('when this answer was made (ISO 8601)'),
  draining: z.boolean().describe('this replica is shutting down'),
  in_progress: z.number().int().describe('answers this replica is producing right now'),
  breaker: z.enum(BREAKER_STATES).describe('the circuit breaker around dispatch to the pool'),
  workers: z.array(
    z.object({
      url: z.string(),
      healthy: z.boolean(),
      breaker: z.enum(BREAKER_STATES).describe('the breaker that guards dispatches to this worker (one guards the whole pool, so every worker shows the same)'),
      in_flight: z.number().int().describe('requests this replica has sent to the worker and not yet finished'),
      queue_length: z.number().int().nullable().describe("the worker's waiting requests at its last health check; null: it did not say"),
      running_sequences: z.number().int().nullable(),
      kv_tokens_in_use: z.number().int().nullable(),
      kv_tokens_capacity: z.number().int().nullable(),
      model: z.string().nullable(),
      adapters: z.array(z.string()),
      execution_provider: z.string().nullable(),
      last_error: z.string().nullable(),
      last_check_at: z.string().nullable(),
    }),
  ),
  degrade: z.object({
    mode: z.enum(DEGRADE_MODES),
    source: z.enum(DEGRADE_SOURCES),
    updated_at: z.string(),
    updated_by: z.string().nullable().describe('admin-api, console, cli, config, or the label the admin API was given; null: not said'),
    store: z.enum(['redis', 'memory']).describe('redis: shared by every replica; memory: this replica only (Redis unreachable)'),
  }),
  limiter: z.object({
    enabled: z.boolean(),
    redis_connected: z.boolean(),
    mode: z.enum(['redis', ...OUTAGE_POLICIES]).nullable().describe('where decisions are made: redis, or the outage policy in force; null with limits off'),
    outage_policy: z.enum(OUTAGE_POLICIES),
    tiers: z.array(z.object({ name: z.string(), requests: Bucket, tokens: Bucket })),
    limited_last_minute: Counts.describe('429s in the last minute, by tier'),
  }),
  last_minute: z
    .object({
      by_worker: Counts.describe('answers each worker streamed'),
      fallback_by_reason: Counts.describe('fallback answers, by reason'),
      errors_by_code: Counts.describe('error answers, by code (SSE error chunks included)'),
    })
    .describe("this replica's answers in the last minute"),
  knowledge_base: z.object({ entries: z.number().int() }),
});
export type AdminStatus = z.infer<typeof AdminStatusSchema>;

export default async function adminStatusRoutes(app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { pool, breaker, degrade, answerer, activity, fallback, config, redis } = app;
  const limits = config.limits;
  const tiers = Object.entries(limits.tiers).map(([name, t]) => ({
    name,
    requests: { per_minute: t.requests.perMinute, burst: t.requests.burst },
    tokens: { per_minute: t.tokens.perMinute, burst: t.tokens.burst },
  }));

  r.addHook('onRequest', app.requireAdmin);

  r.get(
    '/admin/status',
    { schema: { summary: 'Workers, degrade switch, limiter and the last minute, for the operator console', tags: ['admin'], response: { 200: AdminStatusSchema } } },
    async () => {
      const state = breaker.state;
      const recent = activity.lastMinute();
      const limiter = app.limiterStatus();
      return {
        generated_at: new Date().toISOString(),
        draining: answerer.isDraining,
        in_progress: answerer.inProgress,
        breaker: state,
        workers: pool.snapshot().map((w) => ({
          url: w.url,
          healthy: w.healthy,
          breaker: state,
          in_flight: w.outstanding,
          queue_length: w.load?.queue_length ?? null,
          running_sequences: w.load?.running_sequences ?? null,
          kv_tokens_in_use: w.load?.kv_tokens_in_use ?? null,
          kv_tokens_capacity: w.load?.kv_tokens_capacity ?? null,
          model: w.model,
          adapters: w.adapters,
          execution_provider: w.execution_provider,
          last_error: w.last_error,
          last_check_at: w.last_check_at,
        })),
        degrade: { ...degrade.state, store: degrade.store },
        limiter: {
          enabled: limiter.enabled,
          redis_connected: redis !== null && redis.status === 'ready',
          mode: limiter.mode,
          outage_policy: limits.outage.policy,
          tiers: limits.enabled ? tiers : [],
          limited_last_minute: recent.limited_by_tier,
        },
        last_minute: { by_worker: recent.by_worker, fallback_by_reason: recent.fallback_by_reason, errors_by_code: recent.errors_by_code },
        knowledge_base: { entries: fallback.knowledgeBaseSize },
      };
    },
  );
}
