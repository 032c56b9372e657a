/**
 * The rate-limit configuration: the gateway's schema includes it as `limits`.
 *
 * Every bucket is a token bucket: it holds at most `burst` tokens and refills at `perMinute`
 * tokens a minute. A request takes one token from its tenant's request bucket and
 * `prompt tokens + max_tokens` from its tenant's LLM-token bucket (what is not used is given
 * back when the answer ends). Limits are read once at start; a change takes effect when the
 * gateway restarts (a rolling restart of the replicas on Kubernetes; the buckets in Redis keep
 * their levels across it).
 */
import { z } from 'zod';

/** Limits of the integer arithmetic in the bucket script: burst × 60,000,000 stays below 2^53. */
export const MAX_BURST = 100_000_000;
export const MAX_PER_MINUTE = 1_000_000_000;

const NAME = /^[A-Za-z0-9._:-]{1,64}$/;

const Bucket = z.strictObject({
  perMinute: z.number().int().min(1).max(MAX_PER_MINUTE).describe('tokens added per minute'),
  burst: z.number().int().min(1).max(MAX_BURST).describe('most tokens the bucket holds'),
});
export type BucketConfig = z.infer<typeof Bucket>;

const Tier = z.strictObject({
  requests: Bucket.describe('request bucket: one token per request'),
  tokens: Bucket.describe('LLM-token bucket: prompt tokens + max_tokens per request, unused ones refunded'),
});
export type TierConfig = z.infer<typeof Tier>;

const PartialBucket = z.strictObject({
  perMinute: z.number().int().min(1).max(MAX_PER_MINUTE).optional(),
  burst: z.number().int().min(1).max(MAX_BURST).optional(),
});

const TenantOverride = z.strictObject({
  requests: PartialBucket.optional(),
  tokens: PartialBucket.optional(),
});
export type TenantOverride = z.infer<typeof TenantOverride>;

const GlobalBucket = z.strictObject({
  perMinute: z.number().int().min(0).max(MAX_PER_MINUTE).default(0),
  burst: z.number().int().min(0).max(MAX_BURST).default(0),
});

export const OUTAGE_POLICIES = ['local', 'fail-open', 'fail-closed'] as const;
export type OutagePolicy = (typeof OUTAGE_POLICIES)[number];

export const DEFAULT_TIERS: Record<string, TierConfig> = {
  anonymous: { requests: { perMinute: 10, burst: 5 }, tokens: { perMinute: 10_000, burst: 10_000 } },
  free: { requests: { perMinute: 60, burst: 20 }, tokens: { perMinute: 40_000, burst: 20_000 } },
  standard: { requests: { perMinute: 600, burst: 100 }, tokens: { perMinute: 400_000, burst: 100_000 } },
  pro: { requests: { perMinute: 3_000, burst: 500 }, tokens: { perMinute: 2_000_000, burst: 500_000 } },
};

/** Tier names the limits must define: those of the API keys and of anonymous callers (checked by the gateway's schema). */
export function missingTiers(limits: LimitsConfig, used: Iterable<string>): string[] {
  const missing = new Set<string>();
  for (const tier of used) if (!Object.hasOwn(limits.tiers, tier)) missing.add(tier);
  return [...missing];
}

export const LimitsConfigSchema = z
  .object({
    enabled: z.boolean().default(true).describe('false turns every rate limit off (development only)'),
    tiers: z
      .record(z.string().regex(NAME), Tier)
      .default(DEFAULT_TIERS)
      .describe('tier name → `{requests:{perMinute,burst}, tokens:{perMinute,burst}}`; every tier an API key or `auth.anonymousTier` names must be here'),
    tenants: z
      .record(z.string().min(1).max(256), TenantOverride)
      .default({})
      .describe('tenant name → `{requests?:{perMinute?,burst?}, tokens?:{perMinute?,burst?}}`: limits of one tenant that differ from its tier (the tier comes with its API key)'),
    allowList: z
      .array(z.string().min(1))
      .default([])
      .describe('tenant names, or client addresses of anonymous callers (each a bucket of its own; IPv6: its /64), that are never limited'),
    global: z
      .object({
        requests: GlobalBucket.default({ perMinute: 0, burst: 0 }).describe('service-wide request bucket `{perMinute, burst}`; perMinute 0 turns it off, burst 0 means one minute'),
        tokens: GlobalBucket.default({ perMinute: 0, burst: 0 }).describe('service-wide LLM-token bucket `{perMinute, burst}`; perMinute 0 turns it off, burst 0 means one minute'),
        clusterSlices: z
          .number()
          .int()
          .min(1)
          .max(1024)
          .default(16)
          .describe('on Redis Cluster the global buckets are cut into this many slices, one per hash slot group (see ARCHITECTURE.md)'),
      })
      .prefault({}),
    outage: z
      .object({
        policy: z
          .enum(OUTAGE_POLICIES)
          .default('local')
          .describe('when Redis cannot answer: `local` limits with in-process buckets of capacity ÷ replicas, `fail-open` admits, `fail-closed` answers 503'),
        replicas: z.number().int().min(1).max(10_000).default(1).describe('gateway replicas sharing the limits; sizes the `local` buckets'),
        retryMs: z.number().int().min(10).max(60_000).default(1000).describe('after a failed Redis command, how long to decide locally before trying Redis again (sooner when the connection comes back)'),
      })
      .prefault({}),
    batch: z
      .object({
        enabled: z.boolean().default(true).describe('admissions that arrive together go to Redis in one script call (exactly the same decisions as one call each)'),
        windowUs: z
          .number()
          .int()
          .min(0)
          .max(5000)
          .default(0)
          .describe('how long a batch waits for more admissions (µs); 0: only those of the same event-loop turn'),
        maxSize: z.number().int().min(1).max(1024).default(128).describe('a batch this large leaves at once'),
      })
      .prefault({}),
    refundFlushMs: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(100)
      .describe('a refund waits at most this long for its tenant\'s next request to carry it to Redis before it is sent alone'),
  })
  .prefault({});
export type LimitsConfig = z.infer<typeof LimitsConfigSchema>;
