/**
 * How an answer looks on the wire for each API: `/v1/chat` (ours), `/v1/chat/completions` and
 * `/v1/completions` (OpenAI's). One answer pipeline drives all three; a format only shapes
 * objects. Streaming sends `head` (if any), a `delta` per token event, the `tail` objects, then
 * `data: [DONE]`; a non-streamed answer is one `body`. The knowledge `sources` of an answer that
 * asked for them are in the body, and in the first chunk of a stream (`/v1/chat` then starts
 * with `{id, delta: "", sources}`).
 */
import { z } from 'zod';
import type { FinishReason, TokenLogprob, Usage } from '../../protocol/schemas.js';
import type { OpenAIToolCall } from './tool-reply.js';
import type { Degraded, KnowledgeMatch } from '../fallback/knowledge-base.js';

/** A knowledge-base entry an answer was given with (answer/knowledge.ts). */
export interface KnowledgeSource {
  id: string;
  question: string;
  score: number;
}

/** The source an entry makes (its title is the question it answers; scores to three decimals, as `degraded` has them). */
export function sourceOf(match: KnowledgeMatch): KnowledgeSource {
  return { id: match.entry.id, question: match.entry.title, score: Math.round(match.score * 1000) / 1000 };
}

export interface AnswerMeta {
  id: string;
  created: number;
  model: string;
  adapter: string | null;
  degraded: Degraded | false;
  /** The entries put into the prompt (or the fallback's entry); null when the request did not ask for knowledge. */
  sources: KnowledgeSource[] | null;
  includeUsage: boolean;
  logprobs: boolean;
}

/** How an answer ended: the worker's reasons, or `tool_calls` when the reply is calls. */
export type AnswerFinish = FinishReason | 'tool_calls';

export interface AnswerResult {
  text: string;
  finish: AnswerFinish;
  usage: Usage;
  logprobs: TokenLogprob[];
  /** The reply's calls (OpenAI chat only); absent or empty: a text answer. */
  toolCalls?: readonly OpenAIToolCall[];
}

export interface AnswerFormat {
  /** Prefix of the answer id (`chatcmpl-`, ...). */
  idPrefix: string;
  head(meta: AnswerMeta): object | null;
  /** `offset`: characters of the answer sent before this piece. */
  delta(meta: AnswerMeta, text: string, logprobs: TokenLogprob[] | undefined, offset: number): object;
  tail(meta: AnswerMeta, finish: AnswerFinish, usage: Usage): object[];
  body(meta: AnswerMeta, result: AnswerResult): object;
  /**
   * What `body` returns for a plain answer (text only: no logprobs, tool calls, degradation or
   * sources), its keys in the same order; answer/body-json.ts writes such bodies from it.
   */
  plainBody: z.ZodType;
  /** The chunks that stream calls (formats that take tools only). */
  toolCalls?(meta: AnswerMeta, calls: readonly OpenAIToolCall[]): object[];
}

const UsageBody = z.object({ prompt_tokens: z.int(), completion_tokens: z.int(), total_tokens: z.int() }).strict();
const OpenAIFinishBody = z.enum(['stop', 'length', 'tool_calls']);

function usageOf(u: Usage) {
  return { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.prompt_tokens + u.completion_tokens };
}

/** OpenAI's finish reasons have no `cancelled`; a cancelled answer is never seen by its client anyway. */
function openaiFinish(f: AnswerFinish): 'stop' | 'length' | 'tool_calls' {
  return f === 'length' || f === 'tool_calls' ? f : 'stop';
}

const extraDegraded = (meta: AnswerMeta) => (meta.degraded ? { degraded: meta.degraded } : {});
/** An extension field of the JSON body and of a stream's first chunk. */
const extraSources = (meta: AnswerMeta) => (meta.sources ? { sources: meta.sources } : {});

export const chatFormat: AnswerFormat = {
  idPrefix: 'chat-',
  head: (meta) => (meta.sources ? { id: meta.id, delta: '', sources: meta.sources } : null),
  delta: (meta, text) => ({ id: meta.id, delta: text }),
  tail: (meta, finish, usage) => [
    { id: meta.id, model: meta.model, adapter: meta.adapter, finish_reason: finish, usage: usageOf(usage), degraded: meta.degraded },
  ],
  body: (meta, r) => ({
    id: meta.id,
    model: meta.model,
    adapter: meta.adapter,
    message: { role: 'assistant', content: r.text },
    finish_reason: r.finish,
    usage: usageOf(r.usage),
    degraded: meta.degraded,
    ...extraSources(meta),
  }),
  plainBody: z
    .object({
      id: z.string(),
      model: z.string(),
      adapter: z.string().nullable(),
      message: z.object({ role: z.literal('assistant'), content: z.string() }).strict(),
      finish_reason: z.enum(['stop', 'length', 'cancelled', 'tool_calls']),
      usage: UsageBody,
      degraded: z.literal(false),
    })
    .strict(),
};

function chatLogprobs(lps: readonly TokenLogprob[]) {
  return {
    content: lps.map((lp) => ({
      token: lp.token,
      logprob: lp.logprob,
      bytes: lp.bytes,
      top_logprobs: lp.top_logprobs.map((t) => ({ token: t.token, logprob: t.logprob, bytes: t.bytes })),
    })),
  };
}

export const chatCompletionsFormat: AnswerFormat = {
  idPrefix: 'chatcmpl-',
  head: (meta) => ({ ...chunk(meta, { role: 'assistant', content: '' }, null, null), ...extraSources(meta) }),
  delta: (meta, text, lps) => chunk(meta, { content: text }, meta.logprobs && lps ? chatLogprobs(lps) : null, null),
  tail: (meta, finish, usage) => {
    const out: object[] = [chunk(meta, {}, null, openaiFinish(finish))];
    if (meta.includeUsage) {
      out.push({
        id: meta.id,
        object: 'chat.completion.chunk',
        created: meta.created,
        model: meta.model,
        system_fingerprint: null,
        choices: [],
        usage: usageOf(usage),
        ...extraDegraded(meta),
      });
    }
    return out;
  },
  body: (meta, r) => ({
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices: [
      {
        index: 0,
        message:
          r.toolCalls && r.toolCalls.length > 0
            ? { role: 'assistant', content: r.text === '' ? null : r.text, refusal: null, tool_calls: r.toolCalls }
            : { role: 'assistant', content: r.text, refusal: null },
        logprobs: meta.logprobs ? chatLogprobs(r.logprobs) : null,
        finish_reason: openaiFinish(r.finish),
      },
    ],
    usage: usageOf(r.usage),
    ...extraDegraded(meta),
    ...extraSources(meta),
  }),
  plainBody: z
    .object({
      id: z.string(),
      object: z.literal('chat.completion'),
      created: z.int(),
      model: z.string(),
      system_fingerprint: z.null(),
      choices: z.tuple([
        z
          .object({
            index: z.literal(0),
            message: z.object({ role: z.literal('assistant'), content: z.string(), refusal: z.null() }).strict(),
            logprobs: z.null(),
            finish_reason: OpenAIFinishBody,
          })
          .strict(),
      ]),
      usage: UsageBody,
    })
    .strict(),
  // Per call, as OpenAI streams them: its id, type and name with empty arguments, then the
  // arguments; the client puts each call together by its index.
  toolCalls: (meta, calls) =>
    calls.flatMap((c, index) => [
      chunk(meta, { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.function.name, arguments: '' } }] }, null, null),
      chunk(meta, { tool_calls: [{ index, function: { arguments: c.function.arguments } }] }, null, null),
    ]),
};

function chunk(meta: AnswerMeta, delta: object, logprobs: object | null, finish: string | null): object {
  const out: Record<string, unknown> = {
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices: [{ index: 0, delta, logprobs, finish_reason: finish }],
  };
  if (meta.includeUsage) out.usage = null;
  if (finish !== null && meta.degraded) out.degraded = meta.degraded;
  return out;
}

/** OpenAI's legacy completions logprobs; `offset` is where this piece starts in the whole text. */
function completionLogprobs(lps: readonly TokenLogprob[], offset: number) {
  const text_offset: number[] = [];
  let at = offset;
  for (const lp of lps) {
    text_offset.push(at);
    at += lp.token.length;
  }
  return {
    tokens: lps.map((lp) => lp.token),
    token_logprobs: lps.map((lp) => lp.logprob),
    top_logprobs: lps.map((lp) => Object.fromEntries(lp.top_logprobs.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

export const completionsFormat: AnswerFormat = {
  idPrefix: 'cmpl-',
  head: () => null,
  delta: (meta, text, lps, offset) => completionChunk(meta, text, meta.logprobs && lps ? completionLogprobs(lps, offset) : null, null, undefined),
  tail: (meta, finish, usage) => [completionChunk(meta, '', null, openaiFinish(finish), meta.includeUsage ? usageOf(usage) : undefined)],
  body: (meta, r) => ({
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices: [
      { index: 0, text: r.text, logprobs: meta.logprobs ? completionLogprobs(r.logprobs, 0) : null, finish_reason: openaiFinish(r.finish) },
    ],
    usage: usageOf(r.usage),
    ...extraDegraded(meta),
  }),
  plainBody: z
    .object({
      id: z.string(),
      object: z.literal('text_completion'),
      created: z.int(),
      model: z.string(),
      system_fingerprint: z.null(),
      choices: z.tuple([z.object({ index: z.literal(0), text: z.string(), logprobs: z.null(), finish_reason: OpenAIFinishBody }).strict()]),
      usage: UsageBody,
    })
    .strict(),
};

function completionChunk(meta: AnswerMeta, text: string, logprobs: object | null, finish: string | null, usage: object | undefined): object {
  const out: Record<string, unknown> = {
    id: meta.id,
    object: 'text_completion',
    created: meta.created,
    model: meta.model,
    system_fingerprint: null,
    choices: [{ index: 0, text, logprobs, finish_reason: finish }],
  };
  if (usage !== undefined) out.usage = usage;
  if (finish !== null && meta.degraded) out.degraded = meta.degraded;
  return out;
}

/** Stands for the text in a template; JSON.stringify writes it as `"\u0000text\u0000"`. */
const MARK = '\u0000text\u0000';
const MARK_JSON = JSON.stringify(MARK);

/**
 * The SSE frame of a text delta without logprobs as a template: `before + JSON.stringify(text) +
 * after` is exactly `data: ${JSON.stringify(format.delta(meta, text))}\n\n`. Made once per
 * answer from the format itself, so a streamed token costs one string concatenation instead of
 * an object and its serialisation.
 */
export function deltaTemplate(format: AnswerFormat, meta: AnswerMeta): { before: string; after: string } {
  const frame = `data: ${JSON.stringify(format.delta(meta, MARK, undefined, 0))}\n\n`;
  // The last one: the fields before the text (id, model) come from the request and workers.
  const at = frame.lastIndexOf(MARK_JSON);
  return { before: frame.slice(0, at), after: frame.slice(at + MARK_JSON.length) };
}
