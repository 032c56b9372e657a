/**
 * The gateway's configuration: one zod schema, loaded once at start (prefix `GATEWAY`).
 * `npm run config-docs` prints the README table from it.
 */
import { z } from 'zod';
import { loadConfig } from '../shared/config.js';
import { LOG_LEVELS } from '../shared/logging.js';
import { LimitsConfigSchema, missingTiers } from './limiter/config.js';
import { RedisConfigSchema } from './plugins/redis.js';

export const DEGRADE_MODES = ['auto', 'forced', 'off'] as const;
export type DegradeMode = (typeof DEGRADE_MODES)[number];
export const DEGRADE_SOURCES = ['kb', 'canned'] as const;
export type DegradeSource = (typeof DEGRADE_SOURCES)[number];

export const KNOWLEDGE_AUGMENT = ['off', 'on'] as const;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/i, 'expected a SHA-256 hash in hex (64 characters)');
const name = z.string().min(1).max(64).regex(/^[A-Za-z0-9._:-]+$/, 'letters, digits and . _ : - only');

export const ApiKeySchema = z
  .object({
    sha256: sha256Hex.describe('SHA-256 of the key, hex'),
    tenant: name,
    tier: name,
  })
  .strict();
export type ApiKeyConfig = z.infer<typeof ApiKeySchema>;

const hostPort = z.string().regex(/^[^:\s/]+:\d{1,5}$/, 'expected host:port');

export const GatewayConfigSchema = z.object({
  host: z.string().default('127.0.0.1').describe('address the HTTP server binds to'),
  port: z.number().int().min(0).max(65535).default(8080).describe('HTTP port; when unset, `PORT` is used if set (the convention of container platforms)'),
  processes: z
    .number()
    .int()
    .min(1)
    .max(256)
    .default(1)
    .describe('gateway processes on this port (Node cluster), each a whole gateway sharing state through Redis; for a host whose cores one process cannot use'),
  bodyLimitBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024).describe('largest request body; larger gets 413'),
  logLevel: z.enum(LOG_LEVELS).default('info').describe('pino log level'),
  logContent: z.boolean().default(false).describe('log prompts and answers (off: never logged)'),
  drainTimeoutMs: z.number().int().min(0).max(600000).default(10000).describe('on SIGTERM, how long open streams may finish before they are cut'),
  auth: z
    .object({
      keys: z.array(ApiKeySchema).default([]).describe('API keys as `[{sha256, tenant, tier}]` (JSON); the key itself is never configured'),
      anonymous: z.boolean().default(false).describe('admit requests without a key, as tenant `anon:<client ip>`'),
      anonymousTier: name.default('anonymous').describe('tier of anonymous callers'),
      adminTokenSha256: sha256Hex.optional().describe('SHA-256 (hex) of the bearer token for /admin; unset disables /admin'),
      trustProxy: z.boolean().default(false).describe('take the client IP from X-Forwarded-For (only behind a trusted proxy)'),
    })
    .prefault({}),
  model: z
    .object({
      name: z.string().min(1).default('chatglm3-6b').describe('base model name accepted before any worker has reported its own'),
      defaultMaxTokens: z.number().int().min(1).default(512).describe('max_tokens when a request does not say'),
      maxTokensLimit: z.number().int().min(1).default(8192).describe('largest max_tokens a request may ask for'),
      tokenizerPath: z
        .string()
        .default('')
        .describe("the model's tokenizer.model, to count prompt tokens for the token budget; empty: fetched from the first healthy worker (`GET /v1/tokenizer`), an upper bound counted until then"),
    })
    .prefault({}),
  workers: z
    .object({
      urls: z.array(z.string().url()).default([]).describe('worker base URLs (`http://host:port`)'),
      dns: hostPort.optional().describe('`name:port` resolved to every address (a headless Service), re-resolved periodically'),
      resolveIntervalMs: z.number().int().min(100).default(5000).describe('how often the DNS name is re-resolved'),
      healthIntervalMs: z.number().int().min(50).default(2000).describe('active health check period (`GET /readyz` on each worker)'),
      healthTimeoutMs: z.number().int().min(10).default(1000).describe('a health check slower than this fails'),
      unhealthyThreshold: z.number().int().min(1).default(2).describe('unanswered health checks in a row before a worker is taken out (a `ready: false` answer or a refused connection takes it out at once)'),
      connections: z.number().int().min(1).default(64).describe('keep-alive connections per worker'),
      ttftTimeoutMs: z.number().int().min(1).default(30000).describe('time to the first token before the attempt fails (ms)'),
      totalTimeoutMs: z.number().int().min(1).default(300000).describe('longest a whole answer may take (ms)'),
      maxAttempts: z.number().int().min(1).max(10).default(2).describe('workers tried for one request while nothing has streamed'),
    })
    .prefault({}),
  breaker: z
    .object({
      enabled: z.boolean().default(true).describe('opossum `enabled`: off passes every call through'),
      timeoutMs: z.number().int().min(0).default(60000).describe('opossum `timeout`: a dispatch not streaming by then fails (0 = none)'),
      errorThresholdPercentage: z.number().min(0).max(100).default(50).describe('opossum `errorThresholdPercentage`: failure rate that opens it'),
      resetTimeoutMs: z.number().int().min(1).default(10000).describe('opossum `resetTimeout`: open → half-open after this (ms)'),
      rollingCountTimeoutMs: z.number().int().min(1).default(10000).describe('opossum `rollingCountTimeout`: statistics window (ms)'),
      rollingCountBuckets: z.number().int().min(1).default(10).describe('opossum `rollingCountBuckets`: buckets in the window'),
      volumeThreshold: z.number().int().min(0).default(5).describe('opossum `volumeThreshold`: calls in the window before it may open'),
      capacity: z.number().int().min(1).default(10000).describe('opossum `capacity`: concurrent dispatches; more fail'),
      allowWarmUp: z.boolean().default(false).describe('opossum `allowWarmUp`: no opening during the first window'),
      rollingPercentilesEnabled: z.boolean().default(false).describe('opossum `rollingPercentilesEnabled`: latency percentiles (costs per call)'),
    })
    .prefault({}),
  degrade: z
    .object({
      mode: z.enum(DEGRADE_MODES).default('auto').describe('initial mode until Redis says otherwise: `auto` falls back when workers fail, `forced` never calls workers, `off` never falls back'),
      source: z.enum(DEGRADE_SOURCES).default('kb').describe('initial fallback source: knowledge base or canned answer'),
      refreshMs: z.number().int().min(50).default(500).describe('periodic re-read of the flag in Redis, besides pub/sub'),
      retryAfterSeconds: z.number().int().min(1).default(5).describe('Retry-After on a 503 when there is no fallback'),
    })
    .prefault({}),
  knowledgeBase: z
    .object({
      path: z.string().default('data/sample/lawzhidao-sample.csv').describe('knowledge base (lawzhidao .csv or entries .jsonl); empty or missing: canned answers only'),
      minScore: z.number().min(0).default(20).describe('best match below this score gives the canned answer'),
      cannedPath: z.string().optional().describe('JSON file `{"unavailable": "...", "noMatch": "..."}` with canned answers; unset: built-in Chinese texts'),
    })
    .prefault({}),
  knowledge: z
    .object({
      augment: z
        .enum(KNOWLEDGE_AUGMENT)
        .default('off')
        .describe('what a chat request without a `knowledge` field gets: `on` puts the best-matching knowledge-base entries into its prompt, `off` nothing'),
      topK: z.number().int().min(1).max(8).default(3).describe('entries put into a prompt at most, when the request does not say (`knowledge.top_k`)'),
      minScore: z.number().min(0).default(20).describe('an entry scoring below this is not put into a prompt, when the request does not say (`knowledge.min_score`)'),
      maxPromptTokens: z.number().int().min(32).max(32768).default(1024).describe('prompt tokens the knowledge turn may take at most; entries that do not fit are left out, the first one cut'),
      refreshMs: z.number().int().min(50).default(500).describe('periodic re-read of knowledge changes in Redis, besides pub/sub'),
      logLength: z.number().int().min(10).max(1000000).default(10000).describe('changes kept in the change log in Redis; a replica further behind reads all entries again'),
      adminBodyLimitBytes: z.number().int().min(1024).max(256 * 1024 * 1024).default(16 * 1024 * 1024).describe('largest body of `POST /admin/knowledge`; larger gets 413'),
    })
    .prefault({}),
  supervisor: z
    .object({
      workers: z.number().int().min(0).max(64).default(1).describe('local worker processes `npm start` runs (0: none)'),
      command: z.string().optional().describe('worker command; unset: this Node running `dist/src/cli/worker.js`'),
      args: z.array(z.string()).default([]).describe('worker arguments (JSON list); the port comes in env `WORKER_PORT`'),
      host: z.string().default('127.0.0.1').describe('address local workers bind to'),
      restartMinMs: z.number().int().min(1).default(500).describe('first restart delay after a crash; doubles per crash'),
      restartMaxMs: z.number().int().min(1).default(30000).describe('longest restart delay'),
      stableMs: z.number().int().min(1).default(60000).describe('a worker up this long has its backoff reset'),
      stopTimeoutMs: z.number().int().min(1).default(10000).describe('after SIGTERM, when a worker is killed'),
    })
    .prefault({}),
  redis: RedisConfigSchema,
  limits: LimitsConfigSchema,
}).superRefine((config, ctx) => {
  if (!config.limits.enabled) return;
  const used = [...config.auth.keys.map((k) => k.tier), ...(config.auth.anonymous ? [config.auth.anonymousTier] : [])];
  const missing = missingTiers(config.limits, used);
  if (missing.length > 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['limits', 'tiers'],
      message: `tier ${missing.map((t) => JSON.stringify(t)).join(', ')} is used by auth but not defined (defined: ${Object.keys(config.limits.tiers).join(', ') || 'none'})`,
    });
  }
});
export type GatewayConfig = z.infer<typeof GatewayConfigSchema>;

export const GATEWAY_CONFIG_PREFIX = 'GATEWAY';

/** Variables read when the key's own is unset: container platforms give the port to listen on as `PORT`. */
export const GATEWAY_ENV_FALLBACKS: Readonly<Record<string, string>> = { GATEWAY_PORT: 'PORT' };

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env, overrides?: Record<string, unknown>): GatewayConfig {
  return loadConfig({ prefix: GATEWAY_CONFIG_PREFIX, schema: GatewayConfigSchema, env, overrides, fallbacks: GATEWAY_ENV_FALLBACKS });
}

/** A config for tests and tools: schema defaults plus the given values (no environment). */
export function gatewayConfig(values: Record<string, unknown> = {}): GatewayConfig {
  return GatewayConfigSchema.parse(values);
}
