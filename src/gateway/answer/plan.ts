/**
 * From a validated body to an AnswerPlan: what goes to a worker (messages or prompt, max_tokens,
 * adapter, sampling), what the knowledge base is searched with, and how the answer is shaped.
 * One function per route; the routes only call them and hand the plan to the answerer.
 */
import { AppError } from '../../shared/errors.js';
import type { ChatMessage, GenerateRequestInput } from '../../protocol/schemas.js';
import type { WorkerPool } from '../dispatch/pool.js';
import { chatCompletionsFormat, chatFormat, completionsFormat } from './formats.js';
import { buildToolPrompt } from '../../tokenizer/tool-template.js';
import type { AnswerPlan } from './pipeline.js';
import type { AnswerTools } from './tool-reply.js';
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

function messageText(content: ChatCompletionsBody['messages'][number]['content']): string {
  if (content == null) return '';
  return typeof content === 'string' ? content : content.map((p) => p.text).join('');
}

/** A conversation with tools, tool calls or tool results, which ChatGLM3's tool template renders. */
function usesTools(body: Pick<ChatCompletionsBody, 'messages' | 'tools'>): boolean {
  return (body.tools != null && body.tools.length > 0) || body.messages.some((m) => m.role === 'tool' || (m.tool_calls != null && m.tool_calls.length > 0));
}

function openaiMessages(body: Pick<ChatCompletionsBody, 'messages'>): ChatMessage[] {
  return body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : (m.role as ChatMessage['role']), content: messageText(m.content) }));
}

/**
 * The turns of a conversation with tools, and how to read the reply: ChatGLM3's own template
 * (src/tokenizer/tool-template.ts), from the tools and calls as the client sent them.
 */
function toolTurns(body: Pick<ChatCompletionsBody, 'messages' | 'tools' | 'tool_choice' | 'parallel_tool_calls'>, generate: GenerateRequestInput): AnswerTools | null {
  const prompt = buildToolPrompt({ messages: body.messages, tools: body.tools ?? undefined, tool_choice: body.tool_choice });
  if (!prompt.ok) throw new AppError('INVALID_REQUEST', `${prompt.issue.message} (${prompt.issue.code.toLowerCase()})`, { param: prompt.issue.param });
  generate.turns = prompt.value.turns;
  if (prompt.value.answerMetadata !== undefined) generate.answer_metadata = prompt.value.answerMetadata;
  const callable = prompt.value.callableTools;
  return callable.length > 0 ? { callable, parallel: body.parallel_tool_calls !== false } : null;
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
    tools: null,
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

/**
 * The prompt of an OpenAI chat request into `generate`: `turns` by ChatGLM3's tool template when
 * the conversation has tools, tool calls or tool results, else `messages`. Returns how to read
 * the reply (null: text only). `/tokenize` calls it too, so its ids are what the worker is fed.
 */
export function chatPromptForms(body: Pick<ChatCompletionsBody, 'messages' | 'tools' | 'tool_choice' | 'parallel_tool_calls'>, generate: GenerateRequestInput): AnswerTools | null {
  if (usesTools(body)) return toolTurns(body, generate);
  generate.messages = openaiMessages(body);
  return null;
}

/** `POST /v1/chat/completions`: OpenAI's chat completions. */
export function chatCompletionsPlan(pool: WorkerPool, id: string, body: ChatCompletionsBody, defaultMaxTokens: number): AnswerPlan {
  const { adapter, generate } = openaiRequest(pool, id, body, body.max_completion_tokens ?? body.max_tokens ?? defaultMaxTokens);
  const last = body.messages.length - 1;
  if (body.messages[last]!.role === 'user' && messageText(body.messages[last]!.content).trim() === '') {
    throw new AppError('INVALID_REQUEST', 'the last user message is empty', { param: `messages.${last}.content` });
  }
  // The knowledge base is searched with what the user last asked.
  const lastUser = body.messages.findLast((m) => m.role === 'user');
  const question = lastUser ? messageText(lastUser.content) : '';
  const tools = chatPromptForms(body, generate);
  if (body.logprobs) generate.logprobs = body.top_logprobs ?? 0;
  return {
    tools,
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
    tools: null,
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
