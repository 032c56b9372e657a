/**
 * The gateway ⇄ worker protocol, imported by both sides.
 *
 * `POST /v1/generate` takes a GenerateRequest as JSON and answers with NDJSON: one event per
 * line, flushed as produced. A request the worker refuses before it starts (bad input, queue
 * full, not ready) gets a plain HTTP error with the error envelope instead of a stream; a failure
 * after the stream has started is an `error` event, and the stream then ends.
 *
 * Stream: `start`, then `token` events (chat requests: `segment` events among them, one per
 * assistant turn of the answer, each before that turn's text), then one `end` or `error`.
 */
import { z } from 'zod';
import { TURN_ROLES } from '../tokenizer/chat-turn.js';

export const ROLES = ['system', 'user', 'assistant'] as const;

export const ChatMessageSchema = z
  .object({
    role: z.enum(ROLES),
    content: z.string(),
  })
  .strict();
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/** Most turns in one request (a turn costs at least two prompt tokens, so this is far past any context). */
export const MAX_TURNS = 4096;
/**
 * Longest metadata line (a tool's name is at most 64 characters); the worker reads a generated
 * first line longer than this as answer text, so a longer one could never be read back either.
 */
export const MAX_METADATA_CHARS = 128;

const MetadataLineSchema = z
  .string()
  .max(MAX_METADATA_CHARS)
  .refine((s) => !/[\r\n]/.test(s), 'a metadata line cannot hold a line break');

/**
 * One ChatGLM3 prompt turn (ChatTurn): `<|role|>` + metadata line + content. Metadata is empty
 * except on an assistant turn that calls a tool (the tool's name).
 */
export const TurnSchema = z
  .object({
    role: z.enum(TURN_ROLES),
    metadata: MetadataLineSchema,
    content: z.string(),
  })
  .strict();

/** ChatGLM3's own sampling defaults, used when a request does not say. */
export const SAMPLING_DEFAULTS = { temperature: 0.8, top_p: 0.8 } as const;

export const MAX_STOP_SEQUENCES = 4;
export const MAX_LOGPROBS = 20;

const PROMPT_FORMS = ['messages', 'turns', 'prompt', 'prompt_ids'] as const;

export const GenerateRequestSchema = z
  .object({
    id: z.string().min(1).max(128),
    /** Chat turns, rendered with ChatGLM3's template by the worker. */
    messages: z.array(ChatMessageSchema).min(1).optional(),
    /**
     * ChatGLM3 turns (tools, tool calls, observations), rendered with the same template; plain
     * `messages` are turns with empty metadata. The request's size is bounded by the body limit.
     */
    turns: z.array(TurnSchema).min(1).max(MAX_TURNS).optional(),
    /**
     * The answer's metadata line, written into the prompt after `<|assistant|>` (a named
     * tool_choice): the model continues with the call's content. Chat requests only.
     */
    answer_metadata: MetadataLineSchema.optional(),
    /** A raw prompt, encoded without the chat template (for /v1/completions). */
    prompt: z.string().min(1).optional(),
    /** Token ids, used as they are. */
    prompt_ids: z.array(z.number().int().min(0)).min(1).optional(),
    /** LoRA adapter name; absent means the base model. */
    adapter: z.string().min(1).max(128).optional(),
    max_tokens: z.number().int().min(1),
    temperature: z.number().min(0).max(2).default(SAMPLING_DEFAULTS.temperature),
    top_p: z.number().gt(0).max(1).default(SAMPLING_DEFAULTS.top_p),
    top_k: z.number().int().min(0).optional(),
    repetition_penalty: z.number().gt(0).max(10).optional(),
    seed: z.number().int().optional(),
    stop: z.array(z.string().min(1)).max(MAX_STOP_SEQUENCES).optional(),
    /** Number of top alternatives to return with each token; absent means no logprobs. */
    logprobs: z.number().int().min(0).max(MAX_LOGPROBS).optional(),
    /** Who the request is for and the tier of its key, for the worker's fair admission. */
    tenant: z.string().min(1).max(256).optional(),
    tier: z.string().min(1).max(64).optional(),
  })
  .strict()
  .superRefine((req, ctx) => {
    const given = PROMPT_FORMS.filter((k) => req[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        // The second form given is the one at fault; with none, the usual one is missing.
        path: [given[1] ?? 'messages'],
        message: 'exactly one of messages, turns, prompt or prompt_ids is required',
      });
    } else if (req.answer_metadata !== undefined && req.messages === undefined && req.turns === undefined) {
      ctx.addIssue({ code: 'custom', path: ['answer_metadata'], message: 'answer_metadata needs messages or turns' });
    }
  });
export type GenerateRequest = z.infer<typeof GenerateRequestSchema>;
export type GenerateRequestInput = z.input<typeof GenerateRequestSchema>;

export const TopLogprobSchema = z.object({
  token: z.string(),
  id: z.number().int(),
  logprob: z.number(),
  bytes: z.array(z.number().int()),
});
export const TokenLogprobSchema = TopLogprobSchema.extend({
  top_logprobs: z.array(TopLogprobSchema),
});
export type TokenLogprob = z.infer<typeof TokenLogprobSchema>;

export const FINISH_REASONS = ['stop', 'length', 'cancelled'] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

export const UsageSchema = z.object({
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
});
export type Usage = z.infer<typeof UsageSchema>;

export const TimingsSchema = z.object({
  queue_ms: z.number(),
  prefill_ms: z.number(),
  ttft_ms: z.number(),
  decode_ms: z.number(),
  total_ms: z.number(),
});
export type Timings = z.infer<typeof TimingsSchema>;

export const StartEventSchema = z.object({ type: z.literal('start'), prompt_tokens: z.number().int().min(0) });
export const TokenEventSchema = z.object({
  type: z.literal('token'),
  ids: z.array(z.number().int()),
  text: z.string(),
  logprobs: z.array(TokenLogprobSchema).optional(),
  /** Chat requests: the answer segment the text belongs to (absent for prompt requests). */
  segment: z.number().int().min(0).optional(),
});
/**
 * Chat requests: an answer segment's metadata line is complete. ChatGLM3 may write several
 * assistant turns in one answer (`<|assistant|>` between them, each a tool call); segment n's
 * event comes before any text of segment n, and each segment has exactly one, before `end`.
 */
export const SegmentEventSchema = z.object({
  type: z.literal('segment'),
  index: z.number().int().min(0),
  metadata: z.string(),
});
export const EndEventSchema = z.object({
  type: z.literal('end'),
  finish_reason: z.enum(FINISH_REASONS),
  usage: UsageSchema,
  timings: TimingsSchema,
});
export const ErrorEventSchema = z.object({ type: z.literal('error'), code: z.string(), message: z.string() });

export const GenerateEventSchema = z.discriminatedUnion('type', [
  StartEventSchema,
  TokenEventSchema,
  SegmentEventSchema,
  EndEventSchema,
  ErrorEventSchema,
]);
export type StartEvent = z.infer<typeof StartEventSchema>;
export type TokenEvent = z.infer<typeof TokenEventSchema>;
export type SegmentEvent = z.infer<typeof SegmentEventSchema>;
export type EndEvent = z.infer<typeof EndEventSchema>;
export type ErrorEvent = z.infer<typeof ErrorEventSchema>;
export type GenerateEvent = z.infer<typeof GenerateEventSchema>;

/** `GET /v1/adapters`: what a worker serves. The gateway builds `/v1/models` from it. */
export const AdapterInfoSchema = z.object({
  name: z.string(),
  rank: z.number().int().min(0),
  alpha: z.number(),
  target_modules: z.array(z.string()),
});
export type AdapterInfo = z.infer<typeof AdapterInfoSchema>;

export const ADAPTER_MODES = ['none', 'merge', 'runtime'] as const;

export const WorkerModelInfoSchema = z.object({
  model: z.string(),
  context_length: z.number().int().min(1),
  adapter_mode: z.enum(ADAPTER_MODES),
  adapters: z.array(AdapterInfoSchema),
});
export type WorkerModelInfo = z.infer<typeof WorkerModelInfoSchema>;

/**
 * What a ready worker is doing, as of its last scheduler step: the gateway keeps it from each
 * health check (its operator console shows it). KV tokens are those held in the cache and the
 * most that running sequences may reserve.
 */
export const WorkerLoadSchema = z.object({
  queue_length: z.number().int().min(0),
  running_sequences: z.number().int().min(0),
  kv_tokens_in_use: z.number().int().min(0),
  kv_tokens_capacity: z.number().int().min(0),
});
export type WorkerLoad = z.infer<typeof WorkerLoadSchema>;

/** `GET /readyz`: 200 with ready:true once the model is loaded, 503 with ready:false before. */
export const ReadyzSchema = z.object({
  ready: z.boolean(),
  model: z.string().optional(),
  execution_provider: z.string().optional(),
  /** Absent from workers that do not report it. */
  load: WorkerLoadSchema.optional(),
});
export type Readyz = z.infer<typeof ReadyzSchema>;
