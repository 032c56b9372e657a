/**
 * From a validated body to an AnswerPlan: what goes to a worker (messages or prompt, max_tokens,
 * adapter, sampling), what the knowledge base is searched with, and how the answer is shaped.
 * One function per route; the routes only call them and hand the plan to the answerer.
 */
import { AppError } from '../../shared/errors.js';
import type { ChatMessage, GenerateRequestInput } from '../../protocol/schemas.js';
import type { WorkerPool } from '../dispatch/pool.js';
import { chatCompletionsFormat, chatFormat, completionsFormat } from './formats.js';
import type { AnswerPlan } from './pipeline.js';
import type { ChatBody, ChatCompletionsBody, CompletionsBody } from './schemas.js';

function modelNotFound(name: string, param: string): AppError {
  return new AppError('MODEL_NOT_FOUND', `the model ${JSON.stringify(name.slice(0, 256))} does not exist`, { param });
}

/**
 * What the two OpenAI routes share: `model` resolved to a base model or an adapter (404 when
 * nobody serves it), and the worker request's id, max_tokens, adapter and sampling fields, with
 * null meaning "not given".
 */
function openaiRequest(pool: WorkerPool, id: string, body: ChatCompletionsBody | CompletionsBody, maxTokens: number) {
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

/** `POST /v1/chat`: our own shape; `adapter` by name, the base model otherwise. */
export function chatPlan(pool: WorkerPool, id: string, body: ChatBody, defaultMaxTokens: number): AnswerPlan {
  if (body.adapter !== undefined && !pool.hasAdapter(body.adapter)) throw modelNotFound(body.adapter, 'adapter');
  const generate: GenerateRequestInput = {
    id,
    messages: body.messages.map((m) => ({ role: m.role, content: m.content })),
    max_tokens: body.max_tokens ?? defaultMaxTokens,
  };
  if (body.adapter !== undefined) generate.adapter = body.adapter;
  if (body.temperature !== undefined) generate.temperature = body.temperature;
  if (body.top_p !== undefined) generate.top_p = body.top_p;
  return {
    route: 'chat',
    format: chatFormat,
    model: body.adapter !== undefined ? pool.resolveModel(body.adapter)!.base : pool.listModels().bases[0]!,
    adapter: body.adapter,
    generate,
    question: body.messages[body.messages.length - 1]!.content,
    stream: body.stream === true,
    includeUsage: true,
    logprobs: false,
  };
}

/** `POST /v1/chat/completions`: OpenAI's chat completions. */
export function chatCompletionsPlan(pool: WorkerPool, id: string, body: ChatCompletionsBody, defaultMaxTokens: number): AnswerPlan {
  const { adapter, generate } = openaiRequest(pool, id, body, body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens);
  const messages = openaiMessages(body);
  const question = messages[messages.length - 1]!.content;
  if (question.trim() === '') {
    throw new AppError('INVALID_REQUEST', 'the last user message is empty', { param: `messages.${messages.length - 1}.content` });
  }
  generate.messages = messages;
  if (body.logprobs) generate.logprobs = body.top_logprobs ?? 0;
  return {
    route: 'chat_completions',
    format: chatCompletionsFormat,
    model: body.model,
    adapter,
    generate,
    question,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    logprobs: body.logprobs === true,
  };
}

/** `POST /v1/completions`: a raw prompt (text or token ids), no chat template. */
export function completionsPlan(pool: WorkerPool, id: string, body: CompletionsBody, defaultMaxTokens: number): AnswerPlan {
  const { adapter, generate } = openaiRequest(pool, id, body, body.max_tokens ?? defaultMaxTokens);
  if (typeof body.prompt === 'string') generate.prompt = body.prompt;
  else generate.prompt_ids = body.prompt;
  if (body.logprobs != null) generate.logprobs = body.logprobs;
  return {
    route: 'completions',
    format: completionsFormat,
    model: body.model,
    adapter,
    generate,
    question: typeof body.prompt === 'string' ? body.prompt : '',
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    logprobs: body.logprobs != null,
  };
}
