/**
 * `npm run degrade -- <auto|forced|off> [kb|canned]`: sets the degrade switch of every gateway
 * replica through Redis (the same key and channel the admin API uses). With no arguments it
 * prints the switch as stored. Redis comes from the gateway's configuration (GATEWAY_REDIS_*);
 * when Redis cannot be reached the command fails: a switch that reaches no replica is no switch.
 */
import { ConfigError } from '../shared/config.js';
import { DEGRADE_MODES, DEGRADE_SOURCES, loadGatewayConfig } from '../gateway/config.js';
import { DegradeSettingSchema, degradeKey, writeDegrade } from '../gateway/fallback/degrade.js';
import { createRedis } from '../gateway/plugins/redis.js';

/** Who set the switch, as the admin API and the console show it. */
const UPDATED_BY = 'cli';

const USAGE = `usage: npm run degrade -- <${DEGRADE_MODES.join('|')}> [${DEGRADE_SOURCES.join('|')}]`;

async function main(argv: string[]): Promise<number> {
  const config = loadGatewayConfig();
  if (argv.length > 2 || argv.includes('--help') || argv.includes('-h')) {
    console.error(USAGE);
    return argv.length > 2 ? 2 : 0;
  }
  const redis = createRedis({ ...config.redis, commandTimeoutMs: Math.max(config.redis.commandTimeoutMs, 2000) }, 'degrade-cli');
  if (!redis) {
    console.error('no Redis configured (GATEWAY_REDIS_URL is empty): use PUT /admin/degrade on each gateway instead');
    return 1;
  }
  redis.on('error', () => {});
  try {
    const end = Date.now() + config.redis.connectTimeoutMs + 1000;
    while (redis.status !== 'ready' && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    if (redis.status !== 'ready') {
      console.error(`Redis at ${config.redis.url || 'the configured address'} is unreachable: the switch was not changed`);
      return 1;
    }
    const key = degradeKey(config.redis.keyPrefix);
    if (argv.length === 0) {
      console.log((await redis.get(key)) ?? `(not set: each gateway uses its configured mode, ${config.degrade.mode} ${config.degrade.source})`);
      return 0;
    }
    let source = argv[1];
    if (source === undefined) {
      const current = await redis.get(key);
      source = current ? ((JSON.parse(current) as { source?: string }).source ?? config.degrade.source) : config.degrade.source;
    }
    const parsed = DegradeSettingSchema.safeParse({ mode: argv[0], source });
    if (!parsed.success) {
      console.error(`${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}\n${USAGE}`);
      return 2;
    }
    const state = { ...parsed.data, updated_at: new Date().toISOString(), updated_by: UPDATED_BY };
    await writeDegrade(redis, key, state);
    console.log(`degrade switch set: mode ${state.mode}, source ${state.source} (every gateway replica within 1 s)`);
    return 0;
  } finally {
    redis.disconnect();
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : `degrade: ${(err as Error).message}`);
  process.exitCode = 1;
}
