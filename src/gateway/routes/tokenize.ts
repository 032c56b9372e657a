/**
 * `POST /tokenize` and `POST /detokenize`, in vLLM's shapes. The ids are exactly those a worker
 * would feed the model: the same plan code turns the request into the worker's prompt form
 * (messages, or ChatGLM3's tool turns), and the same `promptIdsOf` encodes it, with the model's
 * own tokenizer (from a file, or fetched from a worker).
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { GenerateRequestInput } from '../../protocol/schemas.js';
import { AppError } from '../../shared/errors.js';
import { chatTurnsOf, promptIdsOf } from '../../tokenizer/prompt-ids.js';
import type { ChatGLMTokenizer } from '../../tokenizer/tokenizer.js';
import { chatPromptForms } from '../answer/plan.js';

export default async function tokenizeRoutes(app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { requestSchemas: schemas, pool, prompts } = app;

  /** The served base model a request names (itself or through an adapter); 404 otherwise. */
  const baseOf = (model: string): string => {
    const resolved = pool.resolveModel(model);
    if (!resolved) throw new AppError('MODEL_NOT_FOUND', `the model ${JSON.stringify(model.slice(0, 256))} does not exist`, { param: 'model' });
    return resolved.base;
  };
  const tokenizer = (): ChatGLMTokenizer => {
    if (!prompts.tokenizer) throw new AppError('NOT_READY', "the model's tokenizer is not loaded yet (no worker has answered)", { retryAfter: 1 });
    return prompts.tokenizer;
  };

  r.post('/tokenize', { schema: { body: schemas.TokenizeBody, summary: 'The token ids the model is fed for a chat request or a prompt', tags: ['openai'] } }, async (request) => {
    const body = request.body;
    const base = baseOf(body.model);
    const tok = tokenizer();
    const generate: GenerateRequestInput = { id: request.id, max_tokens: 1 };
    let tokens: number[];
    if (body.messages !== undefined) {
      chatPromptForms({ messages: body.messages, tools: body.tools, tool_choice: body.tool_choice, parallel_tool_calls: undefined }, generate);
      tokens =
        body.add_generation_prompt === false
          ? tok.encodeTurns(chatTurnsOf(generate)!, { generationPrompt: false })
          : promptIdsOf(tok, generate);
    } else {
      generate.prompt = body.prompt!;
      tokens = promptIdsOf(tok, generate);
    }
    return { count: tokens.length, max_model_len: pool.contextLength(base), tokens };
  });

  r.post('/detokenize', { schema: { body: schemas.DetokenizeBody, summary: 'Token ids back to text', tags: ['openai'] } }, async (request) => {
    baseOf(request.body.model);
    return { prompt: tokenizer().decode(request.body.tokens) };
  });
}
