/**
 * Live knowledge: additions, replacements and deletions of knowledge-base entries made while the
 * gateways run, shared through Redis and applied by every replica within a second, without a
 * restart. The knowledge-base file is the starting point; Redis holds what changed since.
 *
 * In Redis (prefix `chat:` by default; one hash tag, so a Redis Cluster keeps them in one slot):
 *   chat:knowledge:{kb}:entries   hash: entry id → the entry's JSON, or `{"deleted":true}`
 *   chat:knowledge:{kb}:version   integer: changes made so far
 *   chat:knowledge:{kb}:log       list: `{"v":N,"ids":[...]}` per change, the last `logLength`
 *   chat:knowledge:{kb}:changes   pub/sub channel: the version of each change
 *
 * Algorithm: a change is one script (WRITE_SCRIPT: atomic — every entry of a request, or none, and
 * the version, the log and the announcement with them). Each replica knows the version it has
 * applied; on a message, and every `refreshMs` in case a message was lost, it runs SYNC_SCRIPT,
 * which answers the ids changed since that version with their current values, or, when the log no
 * longer reaches back that far (or Redis holds less than the replica saw: it was emptied), says so,
 * and the replica then reads the whole hash (HSCAN, page by page) and takes it as the truth: ids it
 * had applied that Redis no longer has go back to the file's entry, or away. Values are applied
 * by id and compared with what was applied before, so applying one twice changes nothing, and a
 * value read newer than the version it came with is simply seen again at the next sync.
 *
 * Without Redis (not configured) a change applies to this process only and the answer says so.
 * With Redis configured but unreachable, the same, and the change is written to Redis by the first
 * sync after Redis is back (last writer wins), as the degrade switch does.
 *
 * Commands go through a connection of their own with a longer timeout than the gateway's
 * (a change of a thousand long entries is megabytes), and requests never wait on Redis: answers
 * search the in-process index.
 */
import { Cluster } from 'ioredis';
import type { Logger } from '../../shared/logging.js';
import { KnowledgeEntrySchema, type KnowledgeEntry } from '../../shared/knowledge-entry.js';
import { sleep } from '../../shared/net.js';
import { repeat, type Repeating } from '../../shared/timer.js';
import { isRedisReady, type RedisClient } from '../plugins/redis.js';
import type { KnowledgeBase } from './knowledge-base.js';

export function knowledgeKeys(keyPrefix: string) {
  const base = `${keyPrefix}knowledge:{kb}`;
  return { entries: `${base}:entries`, version: `${base}:version`, log: `${base}:log`, channel: `${base}:changes` };
}
export type KnowledgeKeys = ReturnType<typeof knowledgeKeys>;

/** What a deleted id holds in the hash: a file entry must stay deleted after a restart. */
export const TOMBSTONE = '{"deleted":true}';

export const WRITE_SCRIPT = `
local entries = KEYS[1]            -- hash: entry id → entry JSON or tombstone
local version = KEYS[2]            -- integer: changes made so far
local log     = KEYS[3]            -- list: {v, ids} per change
local keep    = tonumber(ARGV[1])  -- changes the log keeps
local channel = ARGV[2]            -- where replicas hear of a change

local ids = {}
for i = 3, #ARGV, 2 do
  redis.call('HSET', entries, ARGV[i], ARGV[i + 1])
  ids[#ids + 1] = ARGV[i]
end
local v = redis.call('INCR', version)
redis.call('RPUSH', log, cjson.encode({ v = v, ids = ids }))
redis.call('LTRIM', log, -keep, -1)
redis.call('PUBLISH', channel, v)
return v
`;

export const SYNC_SCRIPT = `
local entries = KEYS[1]            -- hash: entry id → entry JSON or tombstone
local version = KEYS[2]            -- integer: changes made so far
local log     = KEYS[3]            -- list: {v, ids} per change
local have    = tonumber(ARGV[1])  -- the version the replica has applied

local v = tonumber(redis.call('GET', version) or '0')
if v == have then return { v } end
if v > have then
  local first = redis.call('LINDEX', log, 0)
  if first and cjson.decode(first).v <= have + 1 then
    local reply = { v, 'changes' }
    local seen = {}
    for _, change in ipairs(redis.call('LRANGE', log, have + 1 - cjson.decode(first).v, -1)) do
      for _, id in ipairs(cjson.decode(change).ids) do
        if not seen[id] then
          seen[id] = true
          reply[#reply + 1] = id
          reply[#reply + 1] = redis.call('HGET', entries, id) or ''
        end
      end
    end
    return reply
  end
end
return { v, 'all' }
`;

const WRITE = 'chatKnowledgeWrite';
const SYNC = 'chatKnowledgeSync';
/** A change of a thousand long entries is megabytes: far more than the gateway's 100 ms command timeout allows. */
const COMMAND_TIMEOUT_MS = 10_000;
const SCAN_PAGE = 500;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

export type KnowledgeStore = 'redis' | 'memory';

export interface KnowledgeChange {
  /** Where the change lives: Redis (every replica, and after restarts) or this process only. */
  store: KnowledgeStore;
  warning?: string;
}

export interface LiveKnowledgeOptions {
  keyPrefix: string;
  refreshMs: number;
  logLength: number;
}

/** Changes as the store keeps them: entry id → its value (entry JSON, a tombstone, or '' for "not in Redis"). */
type Pairs = Array<[string, string]>;

export class LiveKnowledge {
  private readonly keys: KnowledgeKeys;
  /** The file's entries: what an id goes back to when Redis no longer holds it. */
  private readonly base = new Map<string, KnowledgeEntry>();
  /** The value applied for each id changed since the file (from Redis, or made here). */
  private readonly applied = new Map<string, string>();
  private appliedVersion = 0;
  /** Changes made while Redis was configured but unreachable, oldest first. */
  private readonly pending: Pairs[] = [];
  private client: RedisClient | null = null;
  private subscriber: RedisClient | null = null;
  private timer: Repeating | undefined;
  private closed = false;
  private queued: Promise<void> | null = null;
  private tail: Promise<void> = Promise.resolve();
  private warnedSync = false;

  constructor(
    readonly kb: KnowledgeBase,
    private readonly redis: RedisClient | null,
    private readonly options: LiveKnowledgeOptions,
    private readonly log: Logger,
  ) {
    this.keys = knowledgeKeys(options.keyPrefix);
    for (const entry of kb.all()) this.base.set(entry.id, entry);
  }

  /** Where changes go right now. */
  get store(): KnowledgeStore {
    return isRedisReady(this.client) ? 'redis' : 'memory';
  }

  /** The last version of Redis this replica has applied (0 without Redis). */
  get version(): number {
    return this.appliedVersion;
  }

  /** Connects, applies what Redis holds, then listens for changes and re-reads periodically. */
  async start(): Promise<void> {
    if (!this.redis) return;
    const client = withLongTimeout(this.redis);
    client.on('error', () => {
      // Reconnection is ioredis's job; the periodic re-read covers the gap.
    });
    client.defineCommand(WRITE, { numberOfKeys: 3, lua: WRITE_SCRIPT });
    client.defineCommand(SYNC, { numberOfKeys: 3, lua: SYNC_SCRIPT });
    this.client = client;
    const subscriber = this.redis.duplicate() as RedisClient;
    subscriber.on('error', () => {});
    // No offline queue: subscribe whenever the connection is (again) ready.
    subscriber.on('ready', () => {
      subscriber.subscribe(this.keys.channel).catch(() => {});
    });
    subscriber.on('message', () => {
      void this.sync().catch(() => {});
    });
    this.subscriber = subscriber;
    // The first sync should find the connection up when Redis is there at all.
    const end = Date.now() + 2000;
    while (isRedisReady(this.redis) && client.status !== 'ready' && Date.now() < end) await sleep(10);
    await this.sync().catch(() => {});
    if (!this.closed) this.timer = repeat(this.options.refreshMs, () => this.sync().catch(() => {}));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.stop();
    // Both connections are ours (duplicates); the gateway's client is its owner's to close.
    this.subscriber?.disconnect();
    this.client?.disconnect();
  }

  /** Adds entries or replaces those with the same id, on every replica (or only here, as `store` says). */
  put(entries: readonly KnowledgeEntry[]): Promise<KnowledgeChange> {
    return this.change(entries.map((e) => [e.id, JSON.stringify(e)]));
  }

  /** Deletes an entry (of the file or added later); `found: false` when this replica does not know the id. */
  async delete(id: string): Promise<KnowledgeChange & { found: boolean }> {
    // An entry added on another replica a moment ago may not have arrived yet.
    await this.sync().catch(() => {});
    if (!this.kb.get(id)) return { found: false, store: this.store };
    return { found: true, ...(await this.change([[id, TOMBSTONE]])) };
  }

  /**
   * Brings this replica up to what Redis holds. Calls are queued: one that starts after a write
   * sees it; calls made while one waits to start share it.
   */
  sync(): Promise<void> {
    if (this.queued) return this.queued;
    const run = this.serial(() => {
      this.queued = null;
      return this.syncOnce();
    });
    this.queued = run;
    return run;
  }

  /** Runs `fn` after everything queued before it: syncs and changes never overlap. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  private change(pairs: Pairs): Promise<KnowledgeChange> {
    return this.serial(() => this.changeNow(pairs));
  }

  private async changeNow(pairs: Pairs): Promise<KnowledgeChange> {
    if (this.redis) {
      try {
        if (!isRedisReady(this.client)) throw new Error('not connected');
        // Changes made while Redis was away go first, so that they do not overwrite this one.
        await this.flushPending();
        await this.write(pairs);
        this.apply(pairs);
        await this.syncOnce().catch(() => {});
        return { store: 'redis' };
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'live knowledge: Redis unreachable; the change holds for this replica only until Redis is back');
        this.pending.push(pairs);
      }
    }
    this.apply(pairs);
    return {
      store: 'memory',
      warning: this.redis
        ? 'Redis is unreachable: the change applies to this replica only until Redis is back, then it is shared'
        : 'no Redis configured: the change applies to this gateway process only and is lost when it restarts',
    };
  }

  private write(pairs: Pairs): Promise<unknown> {
    const args: (string | number)[] = [this.keys.entries, this.keys.version, this.keys.log, this.options.logLength, this.keys.channel];
    for (const [id, value] of pairs) args.push(id, value);
    return (this.client as unknown as Record<string, ScriptFn>)[WRITE]!.apply(this.client, args);
  }

  private async flushPending(): Promise<void> {
    if (this.pending.length === 0) return;
    const n = this.pending.length;
    while (this.pending.length > 0) {
      await this.write(this.pending[0]!);
      this.pending.shift();
    }
    this.log.info({ changes: n }, 'live knowledge: changes made while Redis was away are now shared');
  }

  private async syncOnce(): Promise<void> {
    const client = this.client;
    if (!client || this.closed || !isRedisReady(client)) return;
    try {
      await this.flushPending();
      const reply = (await (client as unknown as Record<string, ScriptFn>)[SYNC]!.call(
        client,
        this.keys.entries,
        this.keys.version,
        this.keys.log,
        this.appliedVersion,
      )) as (string | number)[];
      const version = Number(reply[0]);
      if (reply.length > 1) {
        if (reply[1] === 'changes') {
          const pairs: Pairs = [];
          for (let i = 2; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), String(reply[i + 1])]);
          this.apply(pairs);
        } else {
          await this.applyAll(client);
        }
      }
      this.appliedVersion = version;
      this.warnedSync = false;
    } catch (err) {
      // Redis is away or slow: the in-process entries hold; the next round tries again.
      if (!this.warnedSync) this.log.warn({ err: (err as Error).message }, 'live knowledge: cannot read changes from Redis; retrying');
      this.warnedSync = true;
      throw err;
    }
  }

  /** Takes the whole hash as the truth: what this replica applied and Redis no longer holds goes back to the file. */
  private async applyAll(client: RedisClient): Promise<void> {
    const pairs: Pairs = [];
    const inRedis = new Set<string>();
    let cursor = '0';
    do {
      const [next, flat] = (await client.hscan(this.keys.entries, cursor, 'COUNT', SCAN_PAGE)) as [string, string[]];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        if (inRedis.has(flat[i]!)) continue;
        inRedis.add(flat[i]!);
        pairs.push([flat[i]!, flat[i + 1]!]);
      }
      cursor = next;
    } while (cursor !== '0');
    for (const id of this.applied.keys()) if (!inRedis.has(id)) pairs.push([id, '']);
    this.apply(pairs);
    this.log.info({ entries: inRedis.size }, 'live knowledge: read every change from Redis');
  }

  /** Applies values by id: an entry is added or replaces, a tombstone deletes, '' goes back to the file's entry. */
  private apply(pairs: Pairs): void {
    const upserts: KnowledgeEntry[] = [];
    const removals: string[] = [];
    for (const [id, value] of pairs) {
      if ((this.applied.get(id) ?? '') === value) continue;
      let target: KnowledgeEntry | null;
      if (value === '') target = this.base.get(id) ?? null;
      else {
        const parsed = parseValue(id, value);
        if (parsed === undefined) {
          this.log.warn({ key: this.keys.entries, id: id.slice(0, 200) }, 'live knowledge: ignoring an invalid value in Redis');
          continue;
        }
        target = parsed;
      }
      if (value === '') this.applied.delete(id);
      else this.applied.set(id, value);
      if (target) upserts.push(target);
      else removals.push(id);
    }
    // Removals first: an id never appears in both lists.
    this.kb.remove(removals);
    this.kb.upsert(upserts);
  }
}

/** A second connection like `redis`, with the longer command timeout. */
function withLongTimeout(redis: RedisClient): RedisClient {
  if (redis instanceof Cluster) {
    return redis.duplicate(undefined, { redisOptions: { ...redis.options.redisOptions, commandTimeout: COMMAND_TIMEOUT_MS } });
  }
  return redis.duplicate({ commandTimeout: COMMAND_TIMEOUT_MS, connectionName: 'gateway-knowledge' });
}

/** An entry, null for a tombstone, undefined for anything else. */
function parseValue(id: string, value: string): KnowledgeEntry | null | undefined {
  if (value === TOMBSTONE) return null;
  try {
    const parsed = KnowledgeEntrySchema.strict().safeParse(JSON.parse(value));
    return parsed.success && parsed.data.id === id ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
