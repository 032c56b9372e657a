/**
 * Who is asking. API keys are configured only as SHA-256 hashes, each with a tenant and a tier;
 * a presented key is hashed once and the result cached (bounded), so the hot path is one map
 * lookup. Every failure is the same 401 with the same words, whether the key was malformed or
 * merely unknown. Anonymous callers (only when configured) are named by their IP address, never
 * by anything they send. With anonymous access on and no keys configured, a presented key is
 * taken as an anonymous caller: OpenAI clients always send one (`apiKey: 'none'`), and
 * OpenAI-compatible servers without keys accept it. Once keys are configured, an unknown key is a
 * 401 again.
 *
 * The admin token is also configured as a SHA-256 hash and compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import fp from 'fastify-plugin';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { AppError } from '../../shared/errors.js';
import type { GatewayConfig, ApiKeyConfig } from '../config.js';

/** Who is asking: the one tenant type of the gateway (auth makes it, the limiter keys its buckets by it). */
export interface Tenant {
  name: string;
  tier: string;
  anonymous: boolean;
}

/** Keys are printable ASCII without spaces, at most 256 characters; anything else is refused unhashed. */
const KEY_PATTERN = /^[\x21-\x7e]{1,256}$/;
/** Cache entries before the cache starts over; enough for every real key, small enough to bound memory. */
const CACHE_LIMIT = 10_000;

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function invalidKey(): AppError {
  return new AppError('INVALID_API_KEY', 'invalid or missing API key');
}

/** The credential in `Authorization: Bearer <key>` or `x-api-key`; undefined when neither is sent. */
export function presentedKey(authorization: string | undefined, xApiKey: string | string[] | undefined): string | undefined {
  if (authorization !== undefined) {
    if (authorization.length < 7 || authorization.slice(0, 7).toLowerCase() !== 'bearer ') throw invalidKey();
    return authorization.slice(7).trim();
  }
  if (xApiKey !== undefined) {
    if (typeof xApiKey !== 'string') throw invalidKey();
    return xApiKey.trim();
  }
  return undefined;
}

export class ApiKeyAuth {
  private readonly byHash = new Map<string, Tenant>();
  /** Presented key → tenant, for keys already seen to be valid. */
  private readonly cache = new Map<string, Tenant>();

  constructor(
    keys: readonly ApiKeyConfig[],
    private readonly anonymous: { enabled: boolean; tier: string },
  ) {
    for (const k of keys) this.byHash.set(k.sha256.toLowerCase(), { name: k.tenant, tier: k.tier, anonymous: false });
  }

  /** The tenant of a request; throws INVALID_API_KEY (401). */
  authenticate(authorization: string | undefined, xApiKey: string | string[] | undefined, ip: string): Tenant {
    const key = presentedKey(authorization, xApiKey);
    if (key === undefined || (this.byHash.size === 0 && this.anonymous.enabled)) {
      if (this.anonymous.enabled) return { name: `anon:${ip}`, tier: this.anonymous.tier, anonymous: true };
      throw invalidKey();
    }
    const cached = this.cache.get(key);
    if (cached) return cached;
    if (!KEY_PATTERN.test(key)) throw invalidKey();
    const tenant = this.byHash.get(sha256Hex(key));
    if (!tenant) throw invalidKey();
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(key, tenant);
    return tenant;
  }
}

export class AdminAuth {
  private readonly expected: Buffer | null;

  constructor(adminTokenSha256: string | undefined) {
    this.expected = adminTokenSha256 ? Buffer.from(adminTokenSha256.toLowerCase(), 'hex') : null;
  }

  /** Throws FORBIDDEN when admin is not configured, INVALID_API_KEY when the token is wrong. */
  check(authorization: string | undefined): void {
    if (!this.expected) throw new AppError('FORBIDDEN', 'the admin API is disabled (no admin token configured)');
    const token = presentedKey(authorization, undefined);
    if (token === undefined || !KEY_PATTERN.test(token)) throw invalidKey();
    // Both sides are 32-byte digests, so the comparison takes the same time for every token.
    const presented = createHash('sha256').update(token).digest();
    if (!timingSafeEqual(presented, this.expected)) throw invalidKey();
  }
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by `app.authenticate` (the /v1 routes); null elsewhere. */
    tenant: Tenant | null;
  }
  interface FastifyInstance {
    apiAuth: ApiKeyAuth;
    adminAuth: AdminAuth;
    /** onRequest hook: the API key → `request.tenant`, or 401. */
    authenticate: onRequestHookHandler;
    /** onRequest hook: the bearer admin token, or 401/403. */
    requireAdmin: onRequestHookHandler;
  }
}

async function authPlugin(app: FastifyInstance, options: { auth: GatewayConfig['auth'] }): Promise<void> {
  const { auth } = options;
  const apiAuth = new ApiKeyAuth(auth.keys, { enabled: auth.anonymous, tier: auth.anonymousTier });
  const adminAuth = new AdminAuth(auth.adminTokenSha256);
  app.decorate('apiAuth', apiAuth);
  app.decorate('adminAuth', adminAuth);
  app.decorateRequest('tenant', null);
  // Callback hooks, not async ones: an async hook costs a promise per request.
  app.decorate('authenticate', function (request, _reply, done) {
    try {
      request.tenant = apiAuth.authenticate(request.headers.authorization, request.headers['x-api-key'], request.ip);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  } as onRequestHookHandler);
  app.decorate('requireAdmin', function (request, _reply, done) {
    try {
      adminAuth.check(request.headers.authorization);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  } as onRequestHookHandler);
}

export default fp(authPlugin, { name: 'auth', fastify: '5.x' });
