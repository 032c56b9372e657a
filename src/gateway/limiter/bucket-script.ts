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

local calls = tonumber(ARGV[1])   -- requests in this batch, taken one after the other
local reply = { now }
local k = 0                       -- KEYS used by the calls before this one
local a = 2                       -- next ARGV
for c = 1, calls do
  local n = tonumber(ARGV[a])     -- buckets of this call
  a = a + 1
  local levels = {}
  local fits = true
  for i = 1, n do
    local key      = KEYS[k + i]                        -- the bucket: "<level> <µs>"
    local capacity = tonumber(ARGV[a]) * UNIT           -- burst, in units
    local rate     = tonumber(ARGV[a + 1])              -- tokens per minute = units per µs
    local cost     = tonumber(ARGV[a + 2]) * UNIT       -- what this request takes
    local refund   = tonumber(ARGV[a + 3]) * UNIT       -- what earlier requests give back
    a = a + 4

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

  reply[#reply + 1] = fits and 1 or 0
  for i = 1, n do
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
  k = k + n
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
 * The script's reply: `[nowUs, then per call: allowed, then per bucket: remaining, resetMs,
 * waitMs]`, where `resetMs` is the time until the bucket is full and `waitMs` the time until its
 * cost fits (0 when it fits or the call was admitted). A call's part starts at its `base` (the
 * index of its `allowed`): 1 for the first, and each call after takes 1 + 3 × its buckets. Kept
 * flat: it is read once, on the hot path.
 */
export type ScriptReply = number[];

/** Where the first call's part of a reply starts. */
export const FIRST_CALL = 1;

export const replyAllowed = (reply: ScriptReply, base = FIRST_CALL): boolean => reply[base] === 1;
export const replyRemaining = (reply: ScriptReply, i: number, base = FIRST_CALL): number => reply[base + 1 + 3 * i]!;
export const replyResetMs = (reply: ScriptReply, i: number, base = FIRST_CALL): number => reply[base + 2 + 3 * i]!;
export const replyWaitMs = (reply: ScriptReply, i: number, base = FIRST_CALL): number => reply[base + 3 + 3 * i]!;

/** One request's part of a batch: its buckets and what it takes. */
export interface BucketCall {
  specs: readonly BucketSpec[];
  take: Take;
}

type ScriptFn = (...args: (string | number)[]) => Promise<number[]>;

/** Registers the script on the client once (ioredis sends EVALSHA and falls back to EVAL on NOSCRIPT). */
export function defineBucketScript(client: RedisClient): void {
  if (typeof (client as unknown as Record<string, unknown>)[COMMAND] !== 'function') {
    client.defineCommand(COMMAND, { lua: BUCKET_SCRIPT });
  }
}

/** Runs the script for one request: a batch of one. */
export function takeBuckets(client: RedisClient, specs: readonly BucketSpec[], take: Take): Promise<ScriptReply> {
  return takeBatch(client, [{ specs, take }]);
}

/**
 * Runs the script for several requests in one round trip, taken in the order given: the same
 * admissions, to the unit, as one call each in that order, since Redis runs the whole script
 * before anything else. On Cluster every key of a batch must share a hash slot.
 */
export function takeBatch(client: RedisClient, calls: readonly BucketCall[]): Promise<ScriptReply> {
  let keys = 0;
  for (const c of calls) keys += c.specs.length;
  const args: (string | number)[] = new Array(2 + keys + calls.length + 4 * keys);
  args[0] = keys;
  let k = 1;
  let a = 1 + keys;
  args[a++] = calls.length;
  for (const c of calls) {
    const n = c.specs.length;
    args[a++] = n;
    for (let i = 0; i < n; i++) {
      const s = c.specs[i]!;
      args[k++] = s.key;
      args[a++] = s.burst;
      args[a++] = s.perMinute;
      args[a++] = costOf(s, c.take);
      args[a++] = refundOf(s, c.take);
    }
  }
  return (client as unknown as Record<string, ScriptFn>)[COMMAND]!.apply(client, args);
}
