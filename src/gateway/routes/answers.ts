/**
 * The answering routes: `/v1/chat` (ours) and OpenAI's `/v1/chat/completions` and
 * `/v1/completions`. Each turns its validated body into an AnswerPlan (answer/plan.ts) and hands
 * it to the answer pipeline decorated on the app; the token budget applies to all three. The two
 * chat routes put knowledge-base entries into the plan's prompt when asked (`app.augmenter`),
 * before the answer hooks count it.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { chatCompletionsPlan, chatPlan, completionsPlan } from '../answer/plan.js';

export default async function answerRoutes(app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { requestSchemas: schemas, pool, answerer, augmenter } = app;
  const maxTokens = app.config.model.defaultMaxTokens;

  r.post(
    '/v1/chat',
    { schema: { body: schemas.ChatBody, summary: 'Chat with the legal assistant', tags: ['chat'] }, config: { tokenBudget: true } },
    async (request, reply) => answerer.answer(request, reply, augmenter.augment(chatPlan(pool, request.id, request.body, maxTokens), request.body.knowledge)),
  );

  r.post(
    '/v1/chat/completions',
    { schema: { body: schemas.ChatCompletionsBody, summary: 'OpenAI-compatible chat completions', tags: ['openai'] }, config: { tokenBudget: true } },
    async (request, reply) =>
      answerer.answer(request, reply, augmenter.augment(chatCompletionsPlan(pool, request.id, request.body, maxTokens), request.body.knowledge)),
  );

  r.post(
    '/v1/completions',
    { schema: { body: schemas.CompletionsBody, summary: 'OpenAI-compatible raw completions (no chat template)', tags: ['openai'] }, config: { tokenBudget: true } },
    async (request, reply) => answerer.answer(request, reply, completionsPlan(pool, request.id, request.body, maxTokens)),
  );
}
