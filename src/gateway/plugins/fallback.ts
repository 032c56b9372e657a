/**
 * What answers when the workers cannot: the knowledge base with its canned answers (`app.fallback`)
 * and the degrade switch shared through Redis (`app.degrade`); and the knowledge base's live
 * changes, shared through Redis (`app.knowledge`: the same knowledge base, which the augmenter
 * retrieves from too).
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../config.js';
import { DegradeSwitch } from '../fallback/degrade.js';
import { loadFallback, type FallbackAnswerer } from '../fallback/knowledge-base.js';
import { LiveKnowledge } from '../fallback/live-knowledge.js';

declare module 'fastify' {
  interface FastifyInstance {
    fallback: FallbackAnswerer;
    degrade: DegradeSwitch;
    knowledge: LiveKnowledge;
  }
}

export interface FallbackPluginOptions {
  knowledgeBase: GatewayConfig['knowledgeBase'];
  degrade: GatewayConfig['degrade'];
  knowledge: GatewayConfig['knowledge'];
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
  const knowledge = new LiveKnowledge(fallback.kb, app.redis, { keyPrefix: options.keyPrefix, ...options.knowledge }, app.log);
  app.metrics.setKnowledgeProbe(() => ({ entries: knowledge.kb.size, shared: knowledge.store === 'redis' }));
  app.decorate('fallback', fallback);
  app.decorate('degrade', degrade);
  app.decorate('knowledge', knowledge);
  app.addHook('onClose', async () => {
    await degrade.close();
    await knowledge.close();
  });
  await degrade.start();
  await knowledge.start();
}

export default fp(fallbackPlugin, { name: 'fallback', fastify: '5.x', dependencies: ['metrics', 'redis'] });
