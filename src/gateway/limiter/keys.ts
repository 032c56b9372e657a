/**
 * Redis keys of the limiter.
 *
 * A subject is who a bucket belongs to: `t:<tenant>` or `ip:<client address>`. The subject never
 * reaches a key as the caller wrote it: a subject made only of `[A-Za-z0-9._:@-]` and at most 64
 * characters long is used as is; anything else (braces that would move the hash tag, control
 * characters, very long strings) becomes `~` and the base64url SHA-256 of the subject. `~` is not
 * in the plain alphabet, so the two forms never meet and two subjects never share a bucket.
 *
 * Layout: `<prefix>ratelimit:{<tag>}:<bucket>`. The hash tag is the subject, so a tenant's
 * buckets share a Cluster slot and one script call can take from all of them. The global buckets
 * cannot share a slot with every tenant; on Cluster they are therefore cut into slices, and a
 * tenant's keys carry its slice's tag instead, next to that slice of the global buckets
 * (`<prefix>ratelimit:{s7}:t:acme:requests` and `<prefix>ratelimit:{s7}:global:tokens`).
 */
import { createHash } from 'node:crypto';

const PLAIN = /^[A-Za-z0-9._:@-]{1,64}$/;

export function keyPart(subject: string): string {
  if (PLAIN.test(subject)) return subject;
  return `~${createHash('sha256').update(subject, 'utf8').digest('base64url')}`;
}

export const BUCKET_NAMES = ['requests', 'tokens', 'global-requests', 'global-tokens'] as const;
export type BucketName = (typeof BUCKET_NAMES)[number];

export interface BucketKeys {
  requests: string;
  tokens: string;
  globalRequests: string;
  globalTokens: string;
}

/** FNV-1a: a stable, cheap spread of subjects over slices (not a security boundary). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class KeySpace {
  /**
   * @param prefix every key's prefix (`chat:`)
   * @param slices 0: the subject is the hash tag and the global buckets are one key each;
   *               n > 0: the hash tag is one of n slices (Redis Cluster with global buckets)
   */
  constructor(
    private readonly prefix: string,
    readonly slices: number,
  ) {}

  keys(subject: string): BucketKeys {
    const part = keyPart(subject);
    const base = `${this.prefix}ratelimit:`;
    if (this.slices === 0) {
      return {
        requests: `${base}{${part}}:requests`,
        tokens: `${base}{${part}}:tokens`,
        globalRequests: `${base}{global}:requests`,
        globalTokens: `${base}{global}:tokens`,
      };
    }
    const tag = `{s${fnv1a(part) % this.slices}}`;
    return {
      requests: `${base}${tag}:${part}:requests`,
      tokens: `${base}${tag}:${part}:tokens`,
      globalRequests: `${base}${tag}:global:requests`,
      globalTokens: `${base}${tag}:global:tokens`,
    };
  }
}
