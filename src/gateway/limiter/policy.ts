/**
 * Who a request is for the limiter, and which limits apply: the tenant's tier from its API key
 * (or the tier `limits.tenants` names for it), with the tenant's overrides on top; anonymous
 * callers get the anonymous tier, one bucket per client address. Resolved once per tenant.
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

  /** Tier names the limits know; authentication's tiers must be among them (checked at start). */
  get tiers(): string[] {
    return Object.keys(this.config.tiers);
  }

  subject(tenant: Tenant | null | undefined, clientAddress: string): Subject {
    if (!tenant || tenant.anonymous) {
      const tier = this.config.tiers[this.config.anonymousTier]!;
      const id = `ip:${clientAddress}`;
      return {
        id,
        label: `client ${clientAddress}`,
        tier: this.config.anonymousTier,
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
      const tierName = override?.tier ?? tenant.tier;
      const tier = Object.hasOwn(this.config.tiers, tierName) ? this.config.tiers[tierName] : undefined;
      if (!tier) throw new Error(`tenant ${JSON.stringify(tenant.name)} has tier ${JSON.stringify(tierName)}, which limits.tiers does not define`);
      const id = `t:${tenant.name}`;
      subject = {
        id,
        label: `tenant ${JSON.stringify(tenant.name)}`,
        tier: tierName,
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
