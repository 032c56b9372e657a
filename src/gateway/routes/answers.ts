/**
 * The answering routes: `/v1/chat` (ours) and OpenAI's `/v1/chat/completions` and
 * `/v1/completions`. Each turns its validated body into one AnswerPlan (what goes to a worker,
 * what the knowledge base is searched with, how the answer is shaped); answer.ts does the rest.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { AppError } from '../../shared/errors.js';
import type { ChatMessage, GenerateRequestInput } from '../../protocol/schemas.js';
import type { Gateway } from '../app.js';
import { chatCompletionsFormat, chatFormat, completionsFormat } from '../answer/formats.js';
import type { ChatCompletionsBody, CompletionsBody } from '../answer/schemas.js';

function modelNotFound(name: string, param: string): AppError {
  return new AppError('MODEL_NOT_FOUND', `the model ${JSON.stringify(name.slice(0, 256))} does not exist`, { param });
}

/**
 * What the two OpenAI routes share: `model` resolved to a base model or an adapter (404 when
 * nobody serves it), and the worker request's id, max_tokens, adapter and sampling fields, with
 * null meaning "not given".
 */
function openaiRequest(pool: Gateway['pool'], id: string, body: ChatCompletionsBody | CompletionsBody, maxTokens: number) {
  const resolved = pool.resolveModel(body.model);
  if (!resolved) throw modelNotFound(body.model, 'model');
  const generate: GenerateRequestInput = { id, max_tokens: maxTokens };
  if (resolved.adapter !== undefined) generate.adapter = resolved.adapter;
  if (body.temperature != null) generate.temperature = body.temperature;
  if (body.top_p != null) generate.top_p = body.top_p;
  if (body.top_k != null) generate.top_k = body.top_k;
  if (body.repetition_penalty != null) generate.repetition_penalty = body.repetition_penalty;
  if (body.seed != null) generate.seed = body.seed;
  if (body.stop != null) generate.stop = typeof body.stop === 'string' ? [body.stop] : body.stop;
  return { adapter: resolved.adapter, generate };
}

function openaiMessages(body: ChatCompletionsBody): ChatMessage[] {
  return body.messages.map((m) => ({
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
}

export async function answerRoutes(app: FastifyInstance, gw: Gateway): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { schemas, pool, answerer, config } = gw;
  const defaultMaxTokens = config.model.defaultMaxTokens;

  r.post(
    '/v1/chat',
    { schema: { body: schemas.ChatBody, summary: 'Chat with the legal assistant', tags: ['chat'] }, config: { tokenBudget: true } },
    async (request, reply) => {
      const body = request.body;
      if (body.adapter !== undefined && !pool.hasAdapter(body.adapter)) throw modelNotFound(body.adapter, 'adapter');
      const generate: GenerateRequestInput = {
        id: request.id,
        messages: body.messages.map((m) => ({ role: m.role, content: m.content })),
        max_tokens: body.max_tokens ?? defaultMaxTokens,
      };
      if (body.adapter !== undefined) generate.adapter = body.adapter;
      if (body.temperature !== undefined) generate.temperature = body.temperature;
      if (body.top_p !== undefined) generate.top_p = body.top_p;
      return answerer.answer(request, reply, {
        route: 'chat',
        format: chatFormat,
        model: body.adapter !== undefined ? pool.resolveModel(body.adapter)!.base : pool.listModels().bases[0]!,
        adapter: body.adapter,
        generate,
        question: body.messages[body.messages.length - 1]!.content,
        stream: body.stream === true,
        includeUsage: true,
        logprobs: false,
      });
    },
  );

  r.post(
    '/v1/chat/completions',
    { schema: { body: schemas.ChatCompletionsBody, summary: 'OpenAI-compatible chat completions', tags: ['openai'] }, config: { tokenBudget: true } },
    async (request, reply) => {
      const body = request.body;
      const { adapter, generate } = openaiRequest(pool, request.id, body, body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens);
      const messages = openaiMessages(body);
      const question = messages[messages.length - 1]!.content;
      if (question.trim() === '') {
        throw new AppError('INVALID_REQUEST', 'the last user message is empty', { param: `messages.${messages.length - 1}.content` });
      }
      generate.messages = messages;
      if (body.logprobs) generate.logprobs = body.top_logprobs ?? 0;
      return answerer.answer(request, reply, {
        route: 'chat_completions',
        format: chatCompletionsFormat,
        model: body.model,
        adapter,
        generate,
        question,
        stream: body.stream === true,
        includeUsage: body.stream_options?.include_usage === true,
        logprobs: body.logprobs === true,
      });
    },
  );

  r.post(
    '/v1/completions',
    { schema: { body: schemas.CompletionsBody, summary: 'OpenAI-compatible raw completions (no chat template)', tags: ['openai'] }, config: { tokenBudget: true } },
    async (request, reply) => {
      const body = request.body;
      const { adapter, generate } = openaiRequest(pool, request.id, body, body.max_tokens ?? defaultMaxTokens);
      if (typeof body.prompt === 'string') generate.prompt = body.prompt;
      else generate.prompt_ids = body.prompt;
      if (body.logprobs != null) generate.logprobs = body.logprobs;
      return answerer.answer(request, reply, {
        route: 'completions',
        format: completionsFormat,
        model: body.model,
        adapter,
        generate,
        question: typeof body.prompt === 'string' ? body.prompt : '',
        stream: body.stream === true,
        includeUsage: body.stream_options?.include_usage === true,
        logprobs: body.logprobs != null,
      });
    },
  );
}
