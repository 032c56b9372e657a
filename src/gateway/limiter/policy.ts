/**
 * Who a request is for the limiter, and which limits apply: the tier its API key names (or
 * `auth.anonymousTier`), with the tenant's overrides from `limits.tenants` on top. Anonymous
 * callers have one bucket per client address. Resolved once per tenant.
 */
import type { BucketConfig, LimitsConfig } from './config.js';
import { KeySpace, type BucketKeys } from './keys.js';

/** What authentication puts on a request. */
export interface Tenant {
  name: string;
  tier: string;
  anonymous: boolean;
}

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
   * The subject of a request. Anonymous callers are one bucket per client address (the caller
   * passes it normalized: IPv6 cut to its /64); a tenant's limits are its tier's, with its
   * overrides on top. Throws when the tier is unknown (the gateway's schema checks this at start).
   */
  subject(tenant: Tenant, clientAddress: string): Subject {
    const tier = Object.hasOwn(this.config.tiers, tenant.tier) ? this.config.tiers[tenant.tier] : undefined;
    if (!tier) throw new Error(`tier ${JSON.stringify(tenant.tier)} is not defined in limits.tiers`);
    if (tenant.anonymous) {
      const id = `ip:${clientAddress}`;
      return {
        id,
        label: `client ${clientAddress}`,
        tier: tenant.tier,
        allowListed: this.allow.has(clientAddress),
        requests: tier.requests,
        tokens: tier.tokens,
        keys: this.keySpace.keys(id),
      };
    }
    const cacheKey = `${tenant.tier}\u0000${tenant.name}`;
    let subject = this.tenants.get(cacheKey);
    if (!subject) {
      const override = Object.hasOwn(this.config.tenants, tenant.name) ? this.config.tenants[tenant.name] : undefined;
      const id = `t:${tenant.name}`;
      subject = {
        id,
        label: `tenant ${JSON.stringify(tenant.name)}`,
        tier: tenant.tier,
        allowListed: this.allow.has(tenant.name),
        requests: merge(tier.requests, override?.requests),
        tokens: merge(tier.tokens, override?.tokens),
        keys: this.keySpace.keys(id),
      };
      this.tenants.set(cacheKey, subject);
    }
    return subject;
  }
}
