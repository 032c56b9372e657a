/**
 * The degrade switch: `auto` (fall back only when workers fail), `forced` (never call workers)
 * or `off` (never fall back), and the fallback source (`kb` or `canned`).
 *
 * The flag is one JSON value at `<prefix>degrade` in Redis, with when and by whom it was set
 * (`updated_by`: `admin-api`, `console`, `cli`, or what the admin API was told). A change is written there and
 * published on the channel of the same name; every replica applies what it hears, and re-reads
 * the key every `refreshMs` in case a message was lost, so a change reaches all replicas within
 * one second. Requests read the in-process copy and never wait on Redis.
 *
 * Without Redis (not configured or unreachable) a change applies to this process only, with a
 * warning; it is written to Redis at the first re-read after Redis is back (last writer wins).
 */
import { z } from 'zod';
import { DEGRADE_MODES, DEGRADE_SOURCES, type DegradeMode, type DegradeSource } from '../config.js';
import type { Logger } from '../../shared/logging.js';
import { repeat, type Repeating } from '../../shared/timer.js';
import type { GatewayMetrics } from '../plugins/metrics.js';
import { isRedisReady, type RedisClient } from '../plugins/redis.js';

export const DegradeSettingSchema = z
  .object({
    mode: z.enum(DEGRADE_MODES),
    source: z.enum(DEGRADE_SOURCES),
  })
  .strict();
export type DegradeSetting = z.infer<typeof DegradeSettingSchema>;

/** Who set the switch: a short label (`admin-api`, `console`, `cli`, an operator's name). */
export const UpdatedBySchema = z
  .string()
  .regex(/^[A-Za-z0-9._:@ -]{1,64}$/, 'letters, digits, spaces and . _ : @ - only, 1 to 64 characters');

// `updated_by` is optional in Redis: values written before it existed (or by hand) stay valid.
const StoredSchema = DegradeSettingSchema.extend({ updated_at: z.string(), updated_by: UpdatedBySchema.optional() });
export interface DegradeState extends DegradeSetting {
  updated_at: string;
  /** `config` for the configured initial state; null when the stored value does not say. */
  updated_by: string | null;
}

/** Who set the initial state: the gateway's configuration. */
export const CONFIGURED_BY = 'config';

export function degradeKey(keyPrefix: string): string {
  return `${keyPrefix}degrade`;
}

/** Writes the flag to Redis and announces it. Used by the switch and by `npm run degrade`. */
export async function writeDegrade(redis: RedisClient, key: string, state: DegradeState): Promise<void> {
  const value = JSON.stringify(state);
  await redis.set(key, value);
  await redis.publish(key, value);
}

export class DegradeSwitch {
  private current: DegradeState;
  private pending = false;
  private subscriber: RedisClient | null = null;
  private timer: Repeating | undefined;
  private closed = false;
  private readonly key: string;

  constructor(
    private readonly redis: RedisClient | null,
    keyPrefix: string,
    initial: { mode: DegradeMode; source: DegradeSource },
    private readonly refreshMs: number,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    this.key = degradeKey(keyPrefix);
    this.current = { mode: initial.mode, source: initial.source, updated_at: new Date(0).toISOString(), updated_by: CONFIGURED_BY };
    metrics.setDegrade(this.current.mode, this.current.source);
    metrics.setDegradeStoreProbe(() => this.store === 'redis');
  }

  get state(): DegradeState {
    return this.current;
  }

  /** Where the flag lives right now. */
  get store(): 'redis' | 'memory' {
    return isRedisReady(this.redis) ? 'redis' : 'memory';
  }

  async start(): Promise<void> {
    if (!this.redis) return;
    this.subscriber = this.redis.duplicate();
    this.subscriber.on('error', () => {
      // Reconnection is ioredis's job; the periodic re-read covers the gap.
    });
    // No offline queue: subscribe whenever the connection is (again) ready.
    this.subscriber.on('ready', () => {
      this.subscriber?.subscribe(this.key).catch(() => {});
    });
    this.subscriber.on('message', (_channel: string, message: string) => this.apply(message, 'pubsub'));
    await this.refresh();
    if (!this.closed) this.timer = repeat(this.refreshMs, () => this.refresh());
  }

  /** Changes the switch. `stored` says whether every replica will see it or only this one. */
  async set(setting: DegradeSetting, updatedBy: string): Promise<{ state: DegradeState; stored: 'redis' | 'memory' }> {
    const state: DegradeState = { ...setting, updated_at: new Date().toISOString(), updated_by: updatedBy };
    this.adopt(state);
    if (this.redis) {
      try {
        await writeDegrade(this.redis, this.key, state);
        this.pending = false;
        return { state, stored: 'redis' };
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'degrade switch: Redis unreachable; the change holds for this replica only until Redis is back');
      }
    }
    this.pending = this.redis !== null;
    return { state, stored: 'memory' };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.stop();
    // The subscriber is ours (a duplicate); the injected client is its owner's to close.
    this.subscriber?.disconnect();
    this.subscriber = null;
  }

  private async refresh(): Promise<void> {
    const redis = this.redis;
    if (!redis) return;
    try {
      if (this.pending) {
        await writeDegrade(redis, this.key, this.current);
        this.pending = false;
        this.log.info({ ...this.current }, 'degrade switch: change made while Redis was away is now shared');
      } else {
        const value = await redis.get(this.key);
        if (value !== null) this.apply(value, 'poll');
      }
    } catch {
      // Redis is away: the in-process copy holds; the next round tries again.
    }
  }

  private apply(message: string, via: 'pubsub' | 'poll'): void {
    let parsed: DegradeState;
    try {
      const result = StoredSchema.safeParse(JSON.parse(message));
      if (!result.success) throw new Error(result.error.issues[0]?.message);
      parsed = { ...result.data, updated_by: result.data.updated_by ?? null };
    } catch (err) {
      this.log.warn({ key: this.key, err: (err as Error).message }, 'degrade switch: ignoring an invalid value in Redis');
      return;
    }
    if (this.pending) return;
    const c = this.current;
    if (parsed.mode === c.mode && parsed.source === c.source && parsed.updated_at === c.updated_at && parsed.updated_by === c.updated_by) return;
    this.log.info({ mode: parsed.mode, source: parsed.source, by: parsed.updated_by, via }, 'degrade switch changed');
    this.adopt(parsed);
  }

  private adopt(state: DegradeState): void {
    this.current = state;
    this.metrics.setDegrade(state.mode, state.source);
  }
}
