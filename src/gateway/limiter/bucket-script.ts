/**
 * The one Redis script of the limiter: several token buckets checked and taken together.
 *
 * Algorithm: each bucket is a hash `{l: level, t: time of l}`; an absent key is a full bucket.
 * Time is Redis's own (`TIME`), never a gateway's clock, so replicas with skewed clocks agree.
 * For each bucket the script refills the level for the time since `t` (capped at the burst),
 * adds the refund the caller carries, and then, only if every bucket holds its cost, takes the
 * cost from every bucket; otherwise it takes nothing. The new levels are written back either way
 * (so a refund is never lost), each key expiring when its bucket would be full again, so an idle
 * tenant costs no memory.
 *
 * Arithmetic is in integers: one token is 60,000,000 units, so a bucket that refills r tokens a
 * minute gains exactly r units a microsecond. Levels stay below 2^53 (burst ≤ 10^8 tokens) and are
 * passed to HSET as numbers, which Redis formats with full precision. There is no drift and no
 * rounding: "exactly burst + refill, never one more" holds to the token.
 *
 * What is atomic: the whole script (Redis runs one script at a time), across every bucket it
 * names; on Redis Cluster all keys of one call share a hash tag (see keys.ts).
 * On failure: nothing is written (a script that errors before its writes leaves no trace, and
 * the writes come last), and the caller applies its outage policy.
 */
import type { RedisClient } from '../redis.js';

export const BUCKET_SCRIPT = `
local UNIT = 60000000
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])   -- Redis time, µs

local levels = {}
local fits = true
local reply = { now, 0 }
for i = 1, #KEYS do
  local key      = KEYS[i]                            -- the bucket's hash
  local capacity = tonumber(ARGV[4 * i - 3]) * UNIT   -- burst, in units
  local rate     = tonumber(ARGV[4 * i - 2])          -- tokens per minute = units per µs
  local cost     = tonumber(ARGV[4 * i - 1]) * UNIT   -- what this request takes
  local refund   = tonumber(ARGV[4 * i]) * UNIT       -- what earlier requests give back

  local level = capacity
  local state = redis.call('HMGET', key, 'l', 't')
  local stored, since = tonumber(state[1]), tonumber(state[2])
  if stored and since then
    local missing = capacity - stored
    local elapsed = now - since
    if elapsed < 0 then elapsed = 0 end
    if elapsed * rate < missing then level = stored + elapsed * rate end
  end
  level = math.min(capacity, level + refund)
  if level < cost then fits = false end
  levels[i] = { key, capacity, rate, cost, level }
end

if fits then reply[2] = 1 end
for i = 1, #levels do
  local key, capacity, rate, cost, level = unpack(levels[i])
  if fits then level = level - cost end
  if level >= capacity then
    redis.call('DEL', key)
  else
    redis.call('HSET', key, 'l', level, 't', now)
    redis.call('PEXPIRE', key, math.ceil((capacity - level) / rate / 1000))
  end
  local wait = 0
  if not fits and level < cost then wait = math.ceil((cost - level) / rate / 1000) end
  reply[#reply + 1] = math.floor(level / UNIT)                          -- tokens left
  reply[#reply + 1] = math.ceil((capacity - level) / rate / 1000)       -- ms until full
  reply[#reply + 1] = wait                                              -- ms until the cost fits
end
return reply
`;

const COMMAND = 'chatTakeBuckets';

/** One bucket of a call: the key, its limits, and what the call takes from it and gives back. */
export interface BucketCall {
  key: string;
  burst: number;
  perMinute: number;
  cost: number;
  refund: number;
}

export interface BucketReply {
  remaining: number;
  /** ms until the bucket is full again */
  resetMs: number;
  /** ms until the cost fits (0 when it fits, or when the call was admitted) */
  waitMs: number;
}

export interface ScriptReply {
  /** Redis time of the call, µs since the epoch */
  nowUs: number;
  allowed: boolean;
  buckets: BucketReply[];
}

type ScriptFn = (...args: (string | number)[]) => Promise<number[]>;

/** Registers the script on the client once (ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT). */
export function defineBucketScript(client: RedisClient): void {
  if (typeof (client as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
    client.defineCommand(COMMAND, { lua: BUCKET_SCRIPT });
  }
}

/** Runs the script over `calls` in one round trip. */
export async function takeBuckets(client: RedisClient, calls: readonly BucketCall[]): Promise<ScriptReply> {
  const args: (string | number)[] = [calls.length];
  for (const c of calls) args.push(c.key);
  for (const c of calls) args.push(c.burst, c.perMinute, c.cost, c.refund);
  const fn = (client as unknown as Record<string, ScriptFn>)[COMMAND]!;
  const raw = await fn.apply(client, args);
  const buckets: BucketReply[] = [];
  for (let i = 0; i < calls.length; i++) {
    buckets.push({ remaining: raw[2 + 3 * i]!, resetMs: raw[3 + 3 * i]!, waitMs: raw[4 + 3 * i]! });
  }
  return { nowUs: raw[0]!, allowed: raw[1] === 1, buckets };
}
