/**
 * The gateway ⇄ worker protocol, imported by both sides.
 *
 * `POST /v1/generate` takes a GenerateRequest as JSON and answers with NDJSON: one event per
 * line, flushed as produced. A request the worker refuses before it starts (bad input, queue
 * full, not ready) gets a plain HTTP error with the error envelope instead of a stream; a failure
 * after the stream has started is an `error` event, and the stream then ends.
 */
import { z } from 'zod';

export const ROLES = ['system', 'user', 'assistant'] as const;

export const ChatMessageSchema = z
  .object({
    role: z.enum(ROLES),
    content: z.string(),
  })
  .strict();
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/** ChatGLM3's own sampling defaults, used when a request does not say. */
export const SAMPLING_DEFAULTS = { temperature: 0.8, top_p: 0.8 } as const;

export const MAX_STOP_SEQUENCES = 4;
export const MAX_LOGPROBS = 20;

export const GenerateRequestSchema = z
  .object({
    id: z.string().min(1).max(128),
    /** Chat turns, rendered with ChatGLM3's template by the worker. */
    messages: z.array(ChatMessageSchema).min(1).optional(),
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
    const given = [req.messages, req.prompt, req.prompt_ids].filter((v) => v !== undefined).length;
    if (given !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['messages'],
        message: 'exactly one of messages, prompt or prompt_ids is required',
      });
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
  EndEventSchema,
  ErrorEventSchema,
]);
export type StartEvent = z.infer<typeof StartEventSchema>;
export type TokenEvent = z.infer<typeof TokenEventSchema>;
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

/** `GET /readyz`: 200 with ready:true once the model is loaded, 503 with ready:false before. */
export const ReadyzSchema = z.object({
  ready: z.boolean(),
  model: z.string().optional(),
  execution_provider: z.string().optional(),
});
export type Readyz = z.infer<typeof ReadyzSchema>;

export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';

/** Serialises one event as an NDJSON line. */
export function ndjsonLine(event: GenerateEvent): string {
  return `${JSON.stringify(event)}\n`;
}
