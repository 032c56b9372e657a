/**
 * A generate request's prompt as the token ids the worker feeds the model. The worker calls it
 * for every request; a gateway holding the same tokenizer (`GET /v1/tokenizer`) calls it on the
 * request it would send to get the very same ids (for `/tokenize`, or to count prompt tokens).
 *
 * - `messages` are turns with empty metadata, and `turns` are encoded by `encodeTurns`: one
 *   template for plain chat and for tools, `answer_metadata` written after `<|assistant|>`;
 * - `prompt` gets ChatGLM3's `[gMASK] sop` prefix, as its tokenizer adds it to any encoded text;
 * - `prompt_ids` are used as given (the worker checks them against the model's vocabulary).
 */
import type { GenerateRequestInput } from '../protocol/schemas.js';
import type { ChatTurn } from './chat-turn.js';
import type { ChatGLMTokenizer } from './tokenizer.js';

export type PromptForms = Pick<GenerateRequestInput, 'messages' | 'turns' | 'prompt' | 'prompt_ids' | 'answer_metadata'>;

/** The request's chat turns, or undefined for a raw prompt. */
export function chatTurnsOf(req: PromptForms): readonly ChatTurn[] | undefined {
  return req.turns ?? req.messages?.map((m) => ({ role: m.role, metadata: '', content: m.content }));
}

export function promptIdsOf(tokenizer: ChatGLMTokenizer, req: PromptForms): number[] {
  const turns = chatTurnsOf(req);
  if (turns) return tokenizer.encodeTurns(turns, { answerMetadata: req.answer_metadata });
  if (req.prompt !== undefined) return [tokenizer.specialTokens['[gMASK]'], tokenizer.specialTokens.sop, ...tokenizer.encode(req.prompt)];
  return [...(req.prompt_ids ?? [])];
}
