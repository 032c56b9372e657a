/**
 * The limiter in Fastify: @fastify/rate-limit with a store backed by the bucket script.
 *
 * The plugin gives the hooks, key generation, allowList, the 429 and Retry-After. Its store
 * interface, `incr(key, cb)`, knows only a key string, while a decision needs the request (its
 * tenant and its LLM-token cost) and the request needs the decision back (for its headers and
 * its reservation). So the key generator builds the request's `RequestLimit`, files it under a
 * one-request ticket, and returns the ticket as the key; `incr` takes the ticket out and makes the
 * one script call; the decision lands on `request.ratelimit`. To the plugin the count is yes or
 * no: current 1 under a max of 1 is admitted, 2 is refused. Buckets are per tenant on every route,
 * so the route option `groupId` is refused at start.
 *
 * Two ways in, one store:
 * - every route of the scope the plugin is registered in: the plugin's `onRequest` hook takes one
 *   request token (and no LLM tokens);
 * - routes with `config.tokenBudget: true` (the answer routes) skip that hook. Their answer hook
 *   (`beforeAnswer`, after validation, when the prompt and max_tokens are known) goes through the
 *   plugin's `createRateLimit` with the LLM-token cost, so the request token and the reservation
 *   are one script call; `onAnswerEnd` settles the reservation with the answer's usage.
 */
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Registry } from 'prom-client';
import { AppError } from '../../shared/errors.js';
import type { GenerateRequestInput } from '../../protocol/schemas.js';
import type { AnswerHooks } from '../answer/pipeline.js';
import type { RedisClient } from '../plugins/redis.js';
import type { LimitsConfig } from './config.js';
import { openaiDuration, rateLimitHeaders } from './headers.js';
import { Limiter, type Decision, type TokenCost } from './limiter.js';
import { createLimiterMetrics, type LimiterMode } from './metrics.js';
import type { Subject } from './policy.js';
import type { Tenant } from '../plugins/auth.js';

/** What the limiter knows about one request. */
export interface RequestLimit {
  subject: Subject;
  cost: TokenCost;
  decision: Decision | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's answers reserve LLM tokens in the answer hooks, which also take its request token. */
    tokenBudget?: boolean;
  }
  interface FastifyRequest {
    ratelimit: RequestLimit | null;
  }
  interface FastifyInstance {
    limiter: Limiter | null;
    /** The limiter's state as the root app reads it (the plugin's own decorators stay in its scope). */
    limiterStatus: () => LimiterStatus;
  }
}

/** What an operator sees of the limiter. */
export interface LimiterStatus {
  enabled: boolean;
  /** Where decisions are made: `redis`, or the outage policy in force; null with limits off. */
  mode: LimiterMode | null;
}

export const LIMITS_OFF: LimiterStatus = Object.freeze({ enabled: false, mode: null });

export interface LimiterPluginOptions {
  limits: LimitsConfig;
  /** the gateway's client; never closed here */
  redis: RedisClient | null;
  keyPrefix: string;
  registry: Registry;
  /** who is asking (authentication has run by `onRequest` of the routes) */
  tenantOf: (request: FastifyRequest) => Tenant;
  /** prompt tokens of a worker request (the model's tokenizer, or an upper bound until it is at hand) */
  countPrompt: (generate: GenerateRequestInput) => number;
  /** the gateway's answer hooks; the token budget is added to them */
  answerHooks: AnswerHooks[];
  /**
   * Given how to read the limiter's status, once at registration: the plugin lives in the /v1
   * scope, whose decorators the root (/admin/status) does not see.
   */
  onStatus?: (read: () => LimiterStatus) => void;
}

type IncrCallback = (err: Error | null, result?: { current: number; ttl: number }) => void;

const NO_TOKENS: TokenCost = { promptTokens: 0, maxTokens: 0 };

/** The @fastify/rate-limit store; `child` returns a new store on the same shared tickets. */
function storeClass(limiter: Limiter, tickets: Map<string, RequestLimit>) {
  return class LimiterStore {
    incr(key: string, cb: IncrCallback): void {
      const limit = tickets.get(key);
      tickets.delete(key);
      if (!limit) {
        cb(new Error(`rate-limit ticket ${key} not found`));
        return;
      }
      limiter.admit(limit.subject, limit.cost).then(
        (decision) => {
          limit.decision = decision;
          // Refusals other than a short bucket are not 429s: they leave as their own errors.
          const refused = refusalError(decision, limit.cost);
          if (refused) {
            cb(refused);
            return;
          }
          const requests = decision.buckets[0];
          cb(null, decision.allowed ? { current: 1, ttl: requests?.resetMs ?? 0 } : { current: 2, ttl: Math.max(1000, decision.retryAfterMs) });
        },
        (err: unknown) => cb(err instanceof Error ? err : new Error(String(err))),
      );
    }

    child(routeOptions: { groupId?: unknown }): LimiterStore {
      if (routeOptions.groupId !== undefined) {
        throw new Error('rate limits are per tenant on every route; the route option groupId is not supported');
      }
      return new LimiterStore();
    }
  };
}

const BUCKET_WORDS: Record<string, string> = {
  requests: 'requests',
  tokens: 'tokens',
  'global-requests': 'requests (service-wide)',
  'global-tokens': 'tokens (service-wide)',
};

/**
 * The HTTP edge for the refusals that are not a short bucket: a cost no bucket could ever hold
 * (400 TOKEN_BUDGET_EXCEEDED) and Redis unavailable under fail-closed (503 REDIS_UNAVAILABLE).
 */
export function refusalError(decision: Decision, cost: TokenCost): AppError | null {
  if (decision.outcome === 'too_large') {
    const whose = decision.limitedBy === 'tokens' ? `the token bucket of ${decision.subject.label}` : 'the service-wide token bucket';
    return new AppError(
      'TOKEN_BUDGET_EXCEEDED',
      `this request needs ${decision.tokens} tokens (${cost.promptTokens} in the prompt + max_tokens ${cost.maxTokens}), ` +
        `but ${whose} holds at most ${decision.capacity}; lower max_tokens or shorten the messages`,
      { param: 'max_tokens' },
    );
  }
  if (decision.outcome === 'fail_closed') {
    return new AppError('REDIS_UNAVAILABLE', 'rate limits cannot be checked right now (Redis is unavailable); retry shortly', {
      retryAfter: Math.max(1, Math.ceil(decision.retryAfterMs / 1000)),
    });
  }
  return null;
}

/** The 429 message: which bucket was short, its limits, and when to come back. */
export function limitedMessage(decision: Decision): string {
  const bucket = decision.buckets.find((b) => b.name === decision.limitedBy);
  const name = decision.limitedBy ?? 'requests';
  const whose = name.startsWith('global') ? 'the service' : decision.subject.label;
  const limits = bucket ? ` (${bucket.limit.perMinute} ${BUCKET_WORDS[name]} per minute, burst ${bucket.limit.burst})` : '';
  const need = name.endsWith('tokens') && bucket ? `; this request needs ${decision.tokens} and ${bucket.remaining} are left` : '';
  return `rate limit reached: the "${name}" bucket of ${whose} is empty${limits}${need}; retry in ${openaiDuration(decision.retryAfterMs)}`;
}

async function limiterPlugin(app: FastifyInstance, options: LimiterPluginOptions): Promise<void> {
  app.decorateRequest('ratelimit', null);
  if (!options.limits.enabled) {
    app.decorate('limiter', null);
    options.onStatus?.(() => LIMITS_OFF);
    return;
  }
  const limiter = new Limiter({
    config: options.limits,
    redis: options.redis,
    keyPrefix: options.keyPrefix,
    metrics: createLimiterMetrics(options.registry),
    log: app.log,
  });
  app.decorate('limiter', limiter);
  options.onStatus?.(() => ({ enabled: true, mode: limiter.mode }));
  app.addHook('onClose', async () => limiter.close());

  const tickets = new Map<string, RequestLimit>();
  let seq = 0;
  const file = (request: FastifyRequest, limit: RequestLimit): string => {
    request.ratelimit = limit;
    const ticket = String(++seq);
    tickets.set(ticket, limit);
    return ticket;
  };
  const limitOf = (request: FastifyRequest, cost: TokenCost): RequestLimit => ({
    subject: limiter.policies.subject(options.tenantOf(request), request.ip),
    cost,
    decision: null,
  });

  // Before @fastify/rate-limit sees a route: the answer routes are limited in their answer hook.
  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config as { rateLimit?: unknown; tokenBudget?: unknown } | undefined;
    if (config?.tokenBudget === true) route.config = { ...config, rateLimit: false } as RouteOptions['config'];
  });

  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    store: storeClass(limiter, tickets) as never,
    keyGenerator: (request: FastifyRequest) => file(request, limitOf(request, NO_TOKENS)),
    max: 1,
    timeWindow: 60_000,
    // The plugin's own limit headers speak of its yes/no counter; ours are set in onSend.
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    ...(options.limits.allowList.length > 0
      ? {
          allowList: (_request: FastifyRequest, key: string) => {
            const limit = tickets.get(key);
            if (!limit?.subject.allowListed) return false;
            tickets.delete(key);
            return true;
          },
        }
      : {}),
    errorResponseBuilder: (request, context) => {
      const decision = request.ratelimit?.decision;
      const message = decision ? limitedMessage(decision) : `rate limit reached; retry in ${context.after}`;
      return new AppError('RATE_LIMITED', message, { retryAfter: Math.ceil(context.ttl / 1000) });
    },
  });

  // The answer routes: the limit filed by the answer hook goes through the same plugin and store.
  const checkAnswer = app.createRateLimit({ keyGenerator: (request: FastifyRequest) => file(request, request.ratelimit!) });
  options.answerHooks.push({
    async beforeAnswer(ctx) {
      const { request, reply, generate } = ctx;
      request.ratelimit = limitOf(request, { promptTokens: options.countPrompt(generate), maxTokens: generate.max_tokens });
      const result = await checkAnswer(request);
      if (result.isAllowed) return; // allow-listed
      const decision = request.ratelimit.decision!;
      // Set now: a streamed answer writes its headers itself, past onSend.
      reply.headers(rateLimitHeaders(decision));
      if (result.isExceeded) throw new AppError('RATE_LIMITED', limitedMessage(decision), { retryAfter: result.ttlInSeconds });
    },
    onAnswerEnd(ctx, end) {
      limiter.settle(ctx.request.ratelimit?.decision?.reservation, end.usage.prompt_tokens + end.usage.completion_tokens);
    },
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    const decision = request.ratelimit?.decision;
    if (decision && !reply.hasHeader('ratelimit-policy')) reply.headers(rateLimitHeaders(decision));
    done(null, payload);
  });
}

export default fp(limiterPlugin, { name: 'limiter', fastify: '5.x' });
