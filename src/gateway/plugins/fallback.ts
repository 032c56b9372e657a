/**
 * What answers when the workers cannot: the knowledge base with its canned answers (`app.fallback`)
 * and the degrade switch shared through Redis (`app.degrade`).
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../config.js';
import { DegradeSwitch } from '../fallback/degrade.js';
import { loadFallback, type FallbackAnswerer } from '../fallback/knowledge-base.js';

declare module 'fastify' {
  interface FastifyInstance {
    fallback: FallbackAnswerer;
    degrade: DegradeSwitch;
  }
}

export interface FallbackPluginOptions {
  knowledgeBase: GatewayConfig['knowledgeBase'];
  degrade: GatewayConfig['degrade'];
  keyPrefix: string;
  /** A fallback made by the caller (tests, benchmarks); absent: loaded from `knowledgeBase`. */
  fallback?: FallbackAnswerer | undefined;
}

async function fallbackPlugin(app: FastifyInstance, options: FallbackPluginOptions): Promise<void> {
  let fallback = options.fallback;
  if (!fallback) {
    const loaded = await loadFallback({ ...options.knowledgeBase, onSearch: app.metrics.knowledgeBaseSearch });
    for (const w of loaded.warnings) app.log.warn(w);
    fallback = loaded.answerer;
  }
  const degrade = new DegradeSwitch(app.redis, options.keyPrefix, options.degrade, options.degrade.refreshMs, app.metrics, app.log);
  app.decorate('fallback', fallback);
  app.decorate('degrade', degrade);
  app.addHook('onClose', async () => degrade.close());
  await degrade.start();
}

export default fp(fallbackPlugin, { name: 'fallback', fastify: '5.x', dependencies: ['metrics', 'redis'] });
