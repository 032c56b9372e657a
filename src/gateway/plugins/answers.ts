/**
 * What the answering routes run on: the answer pipeline (`app.answerer`) with its hooks
 * (`app.answerHooks`: the seam the token budget uses), the prompt-token counter (`app.prompts`:
 * the model's tokenizer, from a file or from the first healthy worker), the knowledge augmenter
 * (`app.augmenter`, on the live knowledge base of the fallback plugin, counting with
 * `app.prompts`) and the request schemas compiled once (`app.requestSchemas`). Closing drains the
 * open answers first.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { ConfigError } from '../../shared/config.js';
import type { ChatMessage } from '../../protocol/schemas.js';
import { KnowledgeAugmenter } from '../answer/knowledge.js';
import { Answerer, type AnswerHooks } from '../answer/pipeline.js';
import { requestSchemas, type RequestSchemas } from '../answer/schemas.js';
import type { GatewayConfig } from '../config.js';
import { PromptCounter } from '../limiter/prompt-tokens.js';

declare module 'fastify' {
  interface FastifyInstance {
    answerer: Answerer;
    /** Per-answer hooks; plugins push theirs while registering (the limiter's token budget). */
    answerHooks: AnswerHooks[];
    prompts: PromptCounter;
    /** Puts knowledge-base entries into chat plans that ask for them. */
    augmenter: KnowledgeAugmenter;
    requestSchemas: RequestSchemas;
  }
}

export interface AnswersPluginOptions {
  config: GatewayConfig;
  /** Hooks given by the caller, run before those plugins add. */
  answerHooks?: AnswerHooks[] | undefined;
}

async function answersPlugin(app: FastifyInstance, options: AnswersPluginOptions): Promise<void> {
  const { config } = options;
  const answerHooks = [...(options.answerHooks ?? [])];
  const answerer = new Answerer(app.breaker, app.degrade, app.fallback, app.metrics, answerHooks, {
    totalTimeoutMs: config.workers.totalTimeoutMs,
    retryAfterSeconds: config.degrade.retryAfterSeconds,
    logContent: config.logContent,
  });
  const prompts = new PromptCounter(app.log);
  // A message's tokens as the token budget counts them: the template's cost of one message more.
  const countMessage = (message: ChatMessage) =>
    prompts.count({ id: '', max_tokens: 1, messages: [message] }) - prompts.count({ id: '', max_tokens: 1, messages: [] });
  const augmenter = new KnowledgeAugmenter(app.knowledge.kb, countMessage, config.knowledge, app.metrics.knowledgeAugmented);
  app.decorate('answerer', answerer);
  app.decorate('augmenter', augmenter);
  app.decorate('answerHooks', answerHooks);
  app.decorate('prompts', prompts);
  app.decorate('requestSchemas', requestSchemas(config.model));

  // Closing: new answers get 503 NOT_READY from here on (the answerer); open answers get
  // `drainTimeoutMs` to finish before they are cut, then the server closes.
  app.addHook('preClose', async () => answerer.drain(config.drainTimeoutMs));
  app.addHook('onClose', async () => prompts.stop());

  if (!config.model.tokenizerPath) {
    prompts.fetchFromWorkers(app.pool, config.workers.healthIntervalMs, config.workers.healthTimeoutMs);
    return;
  }
  try {
    await prompts.loadFile(config.model.tokenizerPath);
  } catch (err) {
    throw new ConfigError(`invalid configuration: GATEWAY_MODEL_TOKENIZER_PATH (model.tokenizerPath): ${(err as Error).message}`);
  }
}

export default fp(answersPlugin, { name: 'answers', fastify: '5.x', dependencies: ['metrics', 'workers', 'fallback'] });
