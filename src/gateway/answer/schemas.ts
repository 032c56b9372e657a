/**
 * Request bodies of the public API, as zod schemas compiled once per app (limits from config).
 * Unknown fields are refused (`.strict()`): a misspelt sampling parameter silently ignored would
 * be a wrong answer. OpenAI fields that we do not implement are refused with the field named,
 * except `user` (caller metadata) and penalties of 0 (their no-op value).
 */
import { z } from 'zod';
import { compiledBody } from '../../shared/compiled-validation.js';
import { MAX_LOGPROBS, MAX_STOP_SEQUENCES, ROLES } from '../../protocol/schemas.js';
import { DEFAULT_TOOL_LIMITS } from '../../tokenizer/tool-template.js';

const MAX_MESSAGES = 512;
/** Calls in one assistant message of a conversation's history. */
const MAX_TOOL_CALLS = 64;
const MAX_NAME = 256;

const temperature = z.number().min(0).max(2);
const topP = z.number().gt(0).max(1);
const stop = z.union([
  z.string().min(1).max(256),
  z.array(z.string().min(1).max(256)).max(MAX_STOP_SEQUENCES, `at most ${MAX_STOP_SEQUENCES} stop sequences`),
]);
/** Knowledge-base entries in the prompt (answer/knowledge.ts): off, on, or on with its own limits. */
const knowledge = z.union([
  z.boolean(),
  z
    .object({
      top_k: z.number().int().min(1).max(8).optional(),
      min_score: z.number().min(0).max(1_000_000).optional(),
    })
    .strict(),
], { error: 'expected true, false or {"top_k": 1..8, "min_score": number}' });
const zeroOnly = (field: string) => z.literal(0, `${field} is not supported (only 0)`);

/** A refinement's finding: where and what. The zod schemas report these; the compiled path only asks whether there are any. */
interface Issue {
  path: PropertyKey[];
  message: string;
}
const NO_ISSUES: readonly Issue[] = Object.freeze([]);

function report(ctx: z.RefinementCtx, issues: readonly Issue[]): void {
  for (const i of issues) ctx.addIssue({ code: 'custom', path: i.path, message: i.message });
}

/**
 * The last message must be the user's, with something in it; on the OpenAI route it may also be
 * a tool's result, which the model answers.
 */
function lastMessageIssues(messages: ReadonlyArray<{ role: string; content?: unknown }>, roles: readonly string[] = ['user']): readonly Issue[] {
  const last = messages[messages.length - 1];
  if (!last) return NO_ISSUES;
  const at = ['messages', messages.length - 1];
  if (!roles.includes(last.role)) return [{ path: [...at, 'role'], message: `the last message must be from the ${roles.join(' or ')}` }];
  if (typeof last.content === 'string' && last.content.trim() === '') return [{ path: [...at, 'content'], message: 'the last user message is empty' }];
  return NO_ISSUES;
}

interface OpenAIMessageFields {
  role: string;
  content?: unknown;
  tool_calls?: unknown[] | null;
  tool_call_id?: string;
}

/** What an OpenAI message's fields must agree on. */
function openAIMessageIssues(m: OpenAIMessageFields): readonly Issue[] {
  const calls = m.tool_calls != null && m.tool_calls.length > 0;
  let issues: Issue[] | null = null;
  const add = (path: string, message: string) => (issues ??= []).push({ path: [path], message });
  if (m.content == null && !(m.role === 'assistant' && calls)) add('content', 'content is required');
  if (m.tool_calls != null && m.role !== 'assistant') add('tool_calls', 'only assistant messages carry tool_calls');
  if (m.tool_call_id !== undefined && m.role !== 'tool') add('tool_call_id', 'only tool messages carry tool_call_id');
  return issues ?? NO_ISSUES;
}

function chatCompletionsIssues(b: { messages: ReadonlyArray<{ role: string; content?: unknown }>; logprobs?: boolean | null; top_logprobs?: number | null }): readonly Issue[] {
  const last = lastMessageIssues(b.messages, ['user', 'tool']);
  if (last !== NO_ISSUES) return last;
  if (b.top_logprobs != null && !b.logprobs) return [{ path: ['top_logprobs'], message: 'top_logprobs needs logprobs: true' }];
  return NO_ISSUES;
}

export function requestSchemas(limits: { maxTokensLimit: number }) {
  const maxTokens = z.number().int().min(1).max(limits.maxTokensLimit);

  const ChatMessage = z.object({ role: z.enum(ROLES), content: z.string().max(1_000_000) }).strict();

  /** `POST /v1/chat`: our own shape. */
  const ChatBody = compiledBody(
    z
      .object({
        messages: z.array(ChatMessage).min(1, 'messages must not be empty').max(MAX_MESSAGES),
        adapter: z.string().min(1).max(MAX_NAME).optional(),
        max_tokens: maxTokens.optional(),
        temperature: temperature.optional(),
        top_p: topP.optional(),
        stream: z.boolean().optional(),
        knowledge: knowledge.optional(),
      })
      .strict()
      .superRefine((b, ctx) => report(ctx, lastMessageIssues(b.messages))),
    (b) => lastMessageIssues(b.messages) === NO_ISSUES,
  );

  const TextPart = z.object({ type: z.literal('text'), text: z.string() }).strict();
  // Tool calls and tools stay as the client sent them (z.unknown keeps the objects themselves):
  // the tools turn must list them with their keys in the client's order, and the tool template
  // (src/tokenizer/tool-template.ts) checks them, naming the field at fault.
  const OpenAIMessage = z
    .object({
      role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
      content: z.union([z.string().max(1_000_000), z.array(TextPart).min(1).max(256)]).nullish(),
      name: z.string().max(MAX_NAME).optional(),
      tool_calls: z.array(z.unknown()).max(MAX_TOOL_CALLS).nullish(),
      tool_call_id: z.string().max(MAX_NAME).optional(),
      /** What our answers carry (null); clients send an answer back as it came. Not rendered. */
      refusal: z.string().max(1_000_000).nullish(),
    })
    .strict()
    .superRefine((m, ctx) => report(ctx, openAIMessageIssues(m)));

  const common = {
    model: z.string().min(1).max(MAX_NAME),
    max_tokens: maxTokens.nullish(),
    temperature: temperature.nullish(),
    top_p: topP.nullish(),
    stop: stop.nullish(),
    seed: z.number().int().min(-(2 ** 53)).max(2 ** 53).nullish(),
    stream: z.boolean().nullish(),
    stream_options: z.object({ include_usage: z.boolean().optional() }).strict().nullish(),
    n: z.literal(1, 'only n = 1 is supported').nullish(),
    user: z.string().max(MAX_NAME).optional(),
    frequency_penalty: zeroOnly('frequency_penalty').nullish(),
    presence_penalty: zeroOnly('presence_penalty').nullish(),
    /** Extensions beyond OpenAI's API, as vLLM names them. */
    top_k: z.number().int().min(0).max(1000).nullish(),
    repetition_penalty: z.number().gt(0).max(10).nullish(),
  };

  /** `POST /v1/chat/completions`: OpenAI's shape. */
  const ChatCompletionsBody = compiledBody(
    z
      .object({
        ...common,
        messages: z.array(OpenAIMessage).min(1, 'messages must not be empty').max(MAX_MESSAGES),
        max_completion_tokens: maxTokens.nullish(),
        logprobs: z.boolean().nullish(),
        top_logprobs: z.number().int().min(0).max(MAX_LOGPROBS).nullish(),
        tools: z.array(z.unknown()).max(DEFAULT_TOOL_LIMITS.maxTools, `at most ${DEFAULT_TOOL_LIMITS.maxTools} tools`).nullish(),
        tool_choice: z.unknown().optional(),
        /** false: at most one call comes back. */
        parallel_tool_calls: z.boolean().nullish(),
        /** An extension beyond OpenAI's API. */
        knowledge: knowledge.nullish(),
      })
      .strict()
      .superRefine((b, ctx) => report(ctx, chatCompletionsIssues(b))),
    (b) => b.messages.every((m) => openAIMessageIssues(m) === NO_ISSUES) && chatCompletionsIssues(b) === NO_ISSUES,
  );

  /** `POST /v1/completions`: a raw prompt (text or token ids), no chat template. */
  const CompletionsBody = compiledBody(
    z
      .object({
        ...common,
        prompt: z.union([
          z.string().min(1, 'prompt must not be empty').max(4_000_000),
          z.array(z.number().int().min(0).max(2 ** 31 - 1)).min(1, 'prompt must not be empty').max(1_000_000),
        ]),
        logprobs: z.number().int().min(0).max(MAX_LOGPROBS).nullish(),
        echo: z.literal(false, 'echo is not supported').nullish(),
      })
      .strict(),
    () => true,
  );

  /** `POST /tokenize`, vLLM's shape: a chat request's messages (and tools), or a raw prompt. */
  const TokenizeBody = z
    .object({
      model: z.string().min(1).max(MAX_NAME),
      messages: z.array(OpenAIMessage).min(1, 'messages must not be empty').max(MAX_MESSAGES).optional(),
      tools: z.array(z.unknown()).max(DEFAULT_TOOL_LIMITS.maxTools, `at most ${DEFAULT_TOOL_LIMITS.maxTools} tools`).nullish(),
      tool_choice: z.unknown().optional(),
      add_generation_prompt: z.boolean().optional(),
      prompt: z.string().max(4_000_000).optional(),
    })
    .strict()
    .superRefine((b, ctx) => {
      if ((b.messages === undefined) === (b.prompt === undefined)) {
        ctx.addIssue({ code: 'custom', path: [b.messages === undefined ? 'messages' : 'prompt'], message: 'give either messages or prompt' });
      }
      if (b.prompt !== undefined) {
        for (const f of ['tools', 'tool_choice', 'add_generation_prompt'] as const) {
          if (b[f] !== undefined) ctx.addIssue({ code: 'custom', path: [f], message: `${f} goes with messages, not with a prompt` });
        }
      }
    });

  /** `POST /detokenize`: token ids back to text. */
  const DetokenizeBody = z
    .object({
      model: z.string().min(1).max(MAX_NAME),
      tokens: z.array(z.number().int().min(0).max(2 ** 31 - 1)).max(1_000_000),
    })
    .strict();

  return { ChatBody, ChatCompletionsBody, CompletionsBody, TokenizeBody, DetokenizeBody };
}

export type RequestSchemas = ReturnType<typeof requestSchemas>;
export type ChatBody = z.infer<RequestSchemas['ChatBody']>;
export type ChatCompletionsBody = z.infer<RequestSchemas['ChatCompletionsBody']>;
export type CompletionsBody = z.infer<RequestSchemas['CompletionsBody']>;
export type TokenizeBody = z.infer<RequestSchemas['TokenizeBody']>;
