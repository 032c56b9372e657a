/**
 * The limiter in Fastify: @fastify/rate-limit with a store backed by the bucket script.
 *
 * The plugin gives the hooks, key generation, allowList, the 429 and Retry-After. Its store
 * interface, `incr(key, cb)`, knows only a key string, while a decision needs the request (its
 * tenant and its LLM-token cost) and the request needs the decision back (for its headers and
 * its reservation). So the key generator builds the request's `RequestLimit`, files it under a
 * one-request ticket, and returns the ticket as the key; `incr` takes the ticket out and makes the
 * one script call; the decision lands on `request.ratelimit`. To the plugin, the count is yes or
 * no: current 1 under a max of 1 is admitted, 2 is refused. Buckets are per tenant for every route,
 * so the route option `groupId` is refused at start.
 *
 * Routes that declare `config.llmTokens(request)` (prompt tokens and max_tokens, from the
 * validated body) are limited in `preHandler`, after validation; the others in `onRequest`.
 * `settleTokens(request, used)` refunds the unused reservation when the answer ends; an answer
 * that ends without it is charged in full when it succeeded and refunded in full when it failed.
 */
import fp from 'fastify-plugin';
import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest, RouteOptions } from 'fastify';
import type { Registry } from 'prom-client';
import { AppError } from '../../shared/errors.js';
import type { RedisClient } from '../redis.js';
import type { LimitsConfig } from './config.js';
import { openaiDuration, rateLimitHeaders } from './headers.js';
import { Limiter, type Decision, type TokenCost } from './limiter.js';
import { createLimiterMetrics } from './metrics.js';
import type { Subject, Tenant } from './policy.js';

export type LlmTokens = (request: FastifyRequest) => TokenCost | Promise<TokenCost>;

/** What the limiter knows about one request. */
export interface RequestLimit {
  subject: Subject;
  cost: TokenCost;
  decision: Decision | null;
  error: AppError | null;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The LLM-token cost of a request on this route; the route is then limited after validation. */
    llmTokens?: LlmTokens;
  }
  interface FastifyRequest {
    ratelimit: RequestLimit | null;
  }
  interface FastifyInstance {
    limiter: Limiter | null;
  }
}

export interface RateLimitPluginOptions {
  limits: LimitsConfig;
  /** the gateway's client; never closed here */
  redis: RedisClient | null;
  keyPrefix: string;
  registry: Registry;
  /** what authentication found; null or anonymous → limited by client address */
  tenantOf: (request: FastifyRequest) => Tenant | null | undefined;
}

type IncrCallback = (err: Error | null, result?: { current: number; ttl: number }) => void;

interface StoreShared {
  limiter: Limiter;
  tickets: Map<string, RequestLimit>;
}

/** The @fastify/rate-limit store; `child` returns a new store on the same shared state. */
function storeClass(shared: StoreShared) {
  return class LimiterStore {
    incr(key: string, cb: IncrCallback): void {
      const limit = shared.tickets.get(key);
      shared.tickets.delete(key);
      if (!limit) {
        cb(new Error(`rate-limit ticket ${key} not found`));
        return;
      }
      shared.limiter.admit(limit.subject, limit.cost).then(
        (decision) => {
          limit.decision = decision;
          const requests = decision.buckets[0];
          cb(null, decision.allowed ? { current: 1, ttl: requests?.resetMs ?? 0 } : { current: 2, ttl: Math.max(1000, decision.retryAfterMs) });
        },
        (err: unknown) => {
          limit.error = err instanceof AppError ? err : null;
          cb(err instanceof Error ? err : new Error(String(err)));
        },
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

/** The 429 message: which bucket was short, its limits, and when to come back. */
export function limitedMessage(decision: Decision): string {
  const bucket = decision.buckets.find((b) => b.name === decision.limitedBy);
  const name = decision.limitedBy ?? 'requests';
  const whose = name.startsWith('global') ? 'the service' : decision.subject.label;
  const limits = bucket ? ` (${bucket.limit.perMinute} ${BUCKET_WORDS[name]} per minute, burst ${bucket.limit.burst})` : '';
  const need = name.endsWith('tokens') && bucket ? `; this request needs ${decision.tokens} and ${bucket.remaining} are left` : '';
  return `rate limit reached: the "${name}" bucket of ${whose} is empty${limits}${need}; retry in ${openaiDuration(decision.retryAfterMs)}`;
}

async function limiterPlugin(app: FastifyInstance, options: RateLimitPluginOptions): Promise<void> {
  app.decorateRequest('ratelimit', null);
  if (!options.limits.enabled) {
    app.decorate('limiter', null);
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
  app.addHook('onClose', async () => limiter.close());

  const shared: StoreShared = { limiter, tickets: new Map() };
  let seq = 0;

  const file = (request: FastifyRequest, cost: TokenCost): string => {
    const subject = limiter.policies.subject(options.tenantOf(request), normalizeIP(request.ip));
    const limit: RequestLimit = { subject, cost, decision: null, error: null };
    request.ratelimit = limit;
    const ticket = String(++seq);
    shared.tickets.set(ticket, limit);
    return ticket;
  };
  const NO_TOKENS: TokenCost = { promptTokens: 0, maxTokens: 0 };

  // Before @fastify/rate-limit sees a route: a route with an LLM-token cost is limited after
  // validation, with a key generator that files the cost along with the request.
  app.addHook('onRoute', (route: RouteOptions) => {
    const config = route.config as { rateLimit?: unknown; llmTokens?: unknown } | undefined;
    const costOf = config?.llmTokens;
    if (typeof costOf !== 'function' || config!.rateLimit === false) return;
    const own = typeof config!.rateLimit === 'object' && config!.rateLimit !== null ? config!.rateLimit : {};
    const keyGenerator = async (request: FastifyRequest) => file(request, await (costOf as LlmTokens)(request));
    route.config = { ...config, rateLimit: { hook: 'preHandler', keyGenerator, ...own } } as RouteOptions['config'];
  });

  await app.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    store: storeClass(shared) as never,
    keyGenerator: (request: FastifyRequest) => file(request, NO_TOKENS),
    max: 1,
    timeWindow: 60_000,
    // The plugin's own limit headers speak of its counter; ours are set in onSend.
    addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': true },
    addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    ...(options.limits.allowList.length > 0
      ? {
          allowList: (_request: FastifyRequest, key: string) => {
            const limit = shared.tickets.get(key);
            if (!limit?.subject.allowListed) return false;
            shared.tickets.delete(key);
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

  app.addHook('onSend', async (request, reply, payload) => {
    const limit = request.ratelimit;
    if (limit?.decision) reply.headers(rateLimitHeaders(limit.decision));
    else if (limit?.error?.retryAfter !== undefined && !reply.hasHeader('retry-after')) {
      reply.header('retry-after', limit.error.retryAfter);
    }
    return payload;
  });

  app.addHook('onResponse', async (request, reply) => {
    const reservation = request.ratelimit?.decision?.reservation;
    if (reservation && !reservation.settled) limiter.settle(reservation, reply.statusCode >= 400 ? 0 : reservation.tokens);
  });
}

/** Reports what an answer used (prompt + completion tokens); the rest of the reservation is refunded. */
export function settleTokens(request: FastifyRequest, usedTokens: number): void {
  const reservation = request.ratelimit?.decision?.reservation;
  if (reservation) request.server.limiter?.settle(reservation, usedTokens);
}

export default fp(limiterPlugin, { name: 'limiter', fastify: '5.x' });
