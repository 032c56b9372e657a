import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RedisConfigSchema, createRedis, isRedisReady, reconnectDelay, redisErrorKind } from '../../src/gateway/plugins/redis.js';
import { freePort, sleep } from '../../src/shared/net.js';
import { startPrivateRedis } from '../helpers/redis.js';

async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(20);
  }
  return pred();
}

test('no url means no Redis', () => {
  assert.equal(createRedis(RedisConfigSchema.parse({ url: '' })), null);
});

test('a dead Redis fails commands at once instead of queueing them', async (ctx) => {
  const port = await freePort();
  const client = createRedis(RedisConfigSchema.parse({ url: `redis://127.0.0.1:${port}` }))!;
  client.on('error', () => {});
  ctx.after(() => {
      client.disconnect();
  });
  const t0 = performance.now();
  await assert.rejects(client.ping(), (err: unknown) => redisErrorKind(err) === 'unavailable');
  assert.ok(performance.now() - t0 < 50, 'a command on a dead connection must not wait');
  assert.equal(isRedisReady(client), false);
});

test('the client comes back by itself when Redis returns on the same port', async (ctx) => {
  const redis = await startPrivateRedis();
  const client = createRedis(RedisConfigSchema.parse({ url: redis.url }))!;
  client.on('error', () => {});
  ctx.after(async () => {
    client.disconnect();
    await redis.stop();
  });
  assert.ok(await until(() => isRedisReady(client), 2000));
  assert.equal(await client.ping(), 'PONG');
  await redis.stop();
  assert.ok(await until(() => !isRedisReady(client), 2000));
  await redis.start();
  assert.ok(await until(() => isRedisReady(client), 5000), 'reconnects within the backoff cap');
  assert.equal(await client.ping(), 'PONG');
});

test('reconnect backoff is capped and error kinds are classified', () => {
  assert.equal(reconnectDelay(1), 50);
  assert.equal(reconnectDelay(100), 2000);
  assert.equal(redisErrorKind(new Error('Command timed out')), 'timeout');
  assert.equal(redisErrorKind(new Error("Stream isn't writeable and enableOfflineQueue options is false")), 'unavailable');
  assert.equal(redisErrorKind(new Error('ERR Error running script (call to f_x): user_script:1')), 'script');
  assert.equal(redisErrorKind('weird'), 'other');
});

test('bad addresses are refused by the schema', () => {
  for (const bad of [{ sentinels: ['nohost'] }, { clusterNodes: ['a:b'] }, { commandTimeoutMs: 0 }]) {
    assert.equal(RedisConfigSchema.safeParse(bad).success, false, JSON.stringify(bad));
  }
});
