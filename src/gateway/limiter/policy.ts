/**
 * Who a request is for the limiter, and which limits apply: the tier its API key names (or
 * `auth.anonymousTier`), with the tenant's overrides from `limits.tenants` on top. Anonymous
 * callers have one bucket per client address. Resolved once per tenant.
 */
import { normalizeIP } from '@fastify/rate-limit';
import type { BucketSpec } from './bucket-script.js';
import type { BucketConfig, LimitsConfig } from './config.js';
import { KeySpace, type BucketKeys } from './keys.js';
import type { Tenant } from '../plugins/auth.js';

export interface Subject {
  /** `t:<tenant>` or `ip:<address>`, before escaping */
  id: string;
  /** how messages name it: `tenant "acme"`, `client 10.0.0.7` */
  label: string;
  tier: string;
  allowListed: boolean;
  requests: BucketConfig;
  tokens: BucketConfig;
  keys: BucketKeys;
  /** the buckets a request takes from, in this order: requests, tokens, then the global ones in force */
  specs: BucketSpec[];
}

export interface GlobalLimits {
  requests: BucketConfig | null;
  tokens: BucketConfig | null;
}

function merge(base: BucketConfig, over: Partial<BucketConfig> | undefined): BucketConfig {
  return { perMinute: over?.perMinute ?? base.perMinute, burst: over?.burst ?? base.burst };
}

export class Policies {
  private readonly tenants = new Map<string, Subject>();
  private readonly allow: Set<string>;
  readonly global: GlobalLimits;

  constructor(
    private readonly config: LimitsConfig,
    readonly keySpace: KeySpace,
  ) {
    this.allow = new Set(config.allowList);
    // A slice of a global bucket gets its share; on one Redis there is one slice, the whole.
    const slices = Math.max(1, keySpace.slices);
    const share = (b: { perMinute: number; burst: number }): BucketConfig | null =>
      b.perMinute === 0
        ? null
        : {
            perMinute: Math.max(1, Math.floor(b.perMinute / slices)),
            burst: Math.max(1, Math.floor((b.burst || b.perMinute) / slices)),
          };
    this.global = { requests: share(config.global.requests), tokens: share(config.global.tokens) };
  }

  /**
   * The subject of a request. Anonymous callers are one bucket per client address (IPv6: its
   * /64, as @fastify/rate-limit groups them); a tenant's limits are its tier's, with its overrides
   * on top. Throws when the tier is unknown (the gateway's schema checks this at start).
   */
  subject(tenant: Tenant, clientIp: string): Subject {
    const tier = Object.hasOwn(this.config.tiers, tenant.tier) ? this.config.tiers[tenant.tier] : undefined;
    if (!tier) throw new Error(`tier ${JSON.stringify(tenant.tier)} is not defined in limits.tiers`);
    if (tenant.anonymous) {
      const address = normalizeIP(clientIp);
      return this.make(`ip:${address}`, `client ${address}`, tenant.tier, this.allow.has(address), tier.requests, tier.tokens);
    }
    const cacheKey = `${tenant.tier}\u0000${tenant.name}`;
    let subject = this.tenants.get(cacheKey);
    if (!subject) {
      const override = Object.hasOwn(this.config.tenants, tenant.name) ? this.config.tenants[tenant.name] : undefined;
      subject = this.make(
        `t:${tenant.name}`,
        `tenant ${JSON.stringify(tenant.name)}`,
        tenant.tier,
        this.allow.has(tenant.name),
        merge(tier.requests, override?.requests),
        merge(tier.tokens, override?.tokens),
      );
      this.tenants.set(cacheKey, subject);
    }
    return subject;
  }

  private make(id: string, label: string, tier: string, allowListed: boolean, requests: BucketConfig, tokens: BucketConfig): Subject {
    const keys = this.keySpace.keys(id);
    const specs: BucketSpec[] = [
      { name: 'requests', key: keys.requests, ...requests, unit: 'requests' },
      { name: 'tokens', key: keys.tokens, ...tokens, unit: 'tokens' },
    ];
    if (this.global.requests) specs.push({ name: 'global-requests', key: keys.globalRequests, ...this.global.requests, unit: 'requests' });
    if (this.global.tokens) specs.push({ name: 'global-tokens', key: keys.globalTokens, ...this.global.tokens, unit: 'tokens' });
    return { id, label, tier, allowListed, requests, tokens, keys, specs };
  }
}
