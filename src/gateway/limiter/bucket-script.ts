/**
 * The one Redis script of the limiter: several token buckets checked and taken together.
 *
 * Algorithm: each bucket is a string `"<level> <time>"`, the level at that time; an absent key is
 * a full bucket. Time is Redis's own (`TIME`), never a gateway's clock, so replicas with skewed
 * clocks agree. For each bucket the script refills the level for the time since it was written
 * (capped at the burst), adds the refund the caller carries, and then, only if every bucket holds
 * its cost, takes the cost from every bucket; otherwise it takes nothing. The new levels are
 * written back either way (so a refund is never lost), each key expiring when its bucket would be
 * full again (`SET ... PX`), so an idle tenant costs no memory.
 *
 * Arithmetic is in integers: one token is 60,000,000 units, so a bucket that refills r tokens a
 * minute gains exactly r units a microsecond. Levels stay below 2^53 (burst ≤ 10^8 tokens) and are
 * written with `%d`, never through Lua's lossy number-to-string conversion. There is no drift and
 * no rounding: "exactly burst + refill, never one more" holds to the unit.
 *
 * What is atomic: the whole script (Redis runs one script at a time), across every bucket it
 * names; on Redis Cluster all keys of one call share a hash tag (see keys.ts).
 * On failure: the writes come after every read and check, so a script that fails leaves the
 * buckets as they were, and the caller applies its outage policy.
 */
import type { RedisClient } from '../plugins/redis.js';
import type { BucketName } from './keys.js';

export const BUCKET_SCRIPT = `
local UNIT = 60000000
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])   -- Redis time, µs

local levels = {}
local fits = true
for i = 1, #KEYS do
  local key      = KEYS[i]                            -- the bucket: "<level> <µs>"
  local capacity = tonumber(ARGV[4 * i - 3]) * UNIT   -- burst, in units
  local rate     = tonumber(ARGV[4 * i - 2])          -- tokens per minute = units per µs
  local cost     = tonumber(ARGV[4 * i - 1]) * UNIT   -- what this request takes
  local refund   = tonumber(ARGV[4 * i]) * UNIT       -- what earlier requests give back

  local level = capacity
  local state = redis.call('GET', key)
  if state then
    local stored, since = string.match(state, '^(%d+) (%d+)$')
    stored, since = tonumber(stored), tonumber(since)
    if stored and since then
      local elapsed = math.max(0, now - since)
      if elapsed * rate < capacity - stored then level = stored + elapsed * rate end
    end
  end
  level = math.min(capacity, level + refund)
  if level < cost then fits = false end
  levels[i] = { key, capacity, rate, cost, level }
end

local reply = { now, fits and 1 or 0 }
for i = 1, #levels do
  local key, capacity, rate, cost, level = unpack(levels[i])
  if fits then level = level - cost end
  if level >= capacity then
    redis.call('DEL', key)
  else
    redis.call('SET', key, string.format('%d %d', level, now), 'PX', math.ceil((capacity - level) / rate / 1000))
  end
  local wait = 0
  if not fits and level < cost then wait = math.ceil((cost - level) / rate / 1000) end
  reply[#reply + 1] = math.floor(level / UNIT)                          -- tokens left
  reply[#reply + 1] = math.ceil((capacity - level) / rate / 1000)       -- ms until full
  reply[#reply + 1] = wait                                              -- ms until the cost fits
end
return reply
`;

/** One token in the units the buckets are kept in. */
export const UNIT = 60_000_000;

const COMMAND = 'chatTakeBuckets';

/** A bucket of a subject: where it is, how large, how fast it refills, and what it counts. */
export interface BucketSpec {
  name: BucketName;
  key: string;
  burst: number;
  perMinute: number;
  unit: 'requests' | 'tokens';
}

/** What one call takes: requests from request buckets, tokens from token buckets, and the refund they get first. */
export interface Take {
  requests: number;
  tokens: number;
  refund: number;
}

export function costOf(spec: BucketSpec, take: Take): number {
  return spec.unit === 'requests' ? take.requests : take.tokens;
}

export function refundOf(spec: BucketSpec, take: Take): number {
  return spec.unit === 'tokens' ? take.refund : 0;
}

/**
 * The script's reply: `[nowUs, allowed, then per bucket: remaining, resetMs, waitMs]`, where
 * `resetMs` is the time until the bucket is full and `waitMs` the time until its cost fits (0 when
 * it fits or the call was admitted). Kept flat: it is read once, on the hot path.
 */
export type ScriptReply = number[];

export const replyAllowed = (reply: ScriptReply): boolean => reply[1] === 1;
export const replyRemaining = (reply: ScriptReply, i: number): number => reply[2 + 3 * i]!;
export const replyResetMs = (reply: ScriptReply, i: number): number => reply[3 + 3 * i]!;
export const replyWaitMs = (reply: ScriptReply, i: number): number => reply[4 + 3 * i]!;

type ScriptFn = (...args: (string | number)[]) => Promise<number[]>;

/** Registers the script on the client once (ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT). */
export function defineBucketScript(client: RedisClient): void {
  if (typeof (client as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
    client.defineCommand(COMMAND, { lua: BUCKET_SCRIPT });
  }
}

/** Runs the script over `specs` in one round trip. */
export function takeBuckets(client: RedisClient, specs: readonly BucketSpec[], take: Take): Promise<ScriptReply> {
  const n = specs.length;
  const args: (string | number)[] = new Array(1 + 5 * n);
  args[0] = n;
  for (let i = 0; i < n; i++) {
    const s = specs[i]!;
    args[1 + i] = s.key;
    const a = 1 + n + 4 * i;
    args[a] = s.burst;
    args[a + 1] = s.perMinute;
    args[a + 2] = costOf(s, take);
    args[a + 3] = refundOf(s, take);
  }
  return (client as unknown as Record<string, ScriptFn>)[COMMAND]!.apply(client, args);
}
