/**
 * Prompt tokens of a worker request, for the LLM-token reservation.
 *
 * With the model's tokenizer the count is exact (the chat template for messages, plain encoding
 * for a raw prompt, the length of prompt_ids). Without it (no tokenizer file configured and no
 * worker has served one yet) the count is an upper bound instead: SentencePiece with byte
 * fallback never makes more pieces of a text than its UTF-8 bytes plus one (the leading-space
 * piece), and ChatGLM3's template adds four tokens per message and three around the whole.
 * An upper bound only ever reserves too much, and the refund at the end of the answer, computed
 * from the worker's own usage, gives the excess back.
 */
import type { ChatMessage, GenerateRequestInput } from '../../shared/protocol.js';

export interface TokenCounter {
  /** the messages with the chat template applied */
  chat(messages: readonly ChatMessage[]): number;
  /** a raw prompt, no template */
  text(prompt: string): number;
}

/** `[gMASK] sop` before the messages and `<|assistant|>` after them. */
const TEMPLATE_AROUND = 3;
/** `<|role|>`, the encoded "\n" (at most two pieces) and the leading-space piece of the content. */
const TEMPLATE_PER_MESSAGE = 4;

/** The upper bound used until the model's tokenizer is at hand. */
export const UPPER_BOUND_COUNTER: TokenCounter = {
  chat: (messages) => {
    let n = TEMPLATE_AROUND;
    for (const m of messages) n += TEMPLATE_PER_MESSAGE + Buffer.byteLength(m.content, 'utf8');
    return n;
  },
  text: (prompt) => Buffer.byteLength(prompt, 'utf8') + 1,
};

export function promptTokens(generate: GenerateRequestInput, counter: TokenCounter): number {
  if (generate.prompt_ids !== undefined) return generate.prompt_ids.length;
  if (generate.prompt !== undefined) return counter.text(generate.prompt);
  return counter.chat(generate.messages ?? []);
}
