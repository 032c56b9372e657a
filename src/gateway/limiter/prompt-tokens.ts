/**
 * Prompt tokens of a worker request, for the LLM-token reservation.
 *
 * With the model's tokenizer the count is the worker's own: the chat template for messages,
 * `[gMASK] sop` + plain encoding for a raw prompt, the length of prompt_ids. The gateway gets the
 * tokenizer from `model.tokenizerPath`, or else from the first healthy worker (`GET
 * /v1/tokenizer`). Until it has one, the count is an upper bound instead: SentencePiece with byte
 * fallback never makes more pieces of a text than its UTF-8 bytes plus one (the leading-space
 * piece), and the template adds at most four tokens per message and three around them. An upper
 * bound only ever reserves too much, and the refund at the end of the answer, computed from the
 * worker's own usage, gives the excess back.
 */
import { request } from 'undici';
import type { GenerateRequestInput } from '../../protocol/schemas.js';
import type { ChatTurn } from '../../tokenizer/chat-turn.js';
import { chatTurnsOf } from '../../tokenizer/prompt-ids.js';
import type { Logger } from '../../shared/logging.js';
import { repeat, type Repeating } from '../../shared/timer.js';
import { ChatGLMTokenizer } from '../../tokenizer/tokenizer.js';
import type { WorkerPool } from '../dispatch/pool.js';

export interface TokenCounter {
  /** chat turns with the template applied (messages are turns with empty metadata), and the answer's metadata line when pre-written */
  chat(turns: readonly ChatTurn[], answerMetadata?: string): number;
  /** a raw prompt: `[gMASK] sop` and the text */
  text(prompt: string): number;
}

/** `[gMASK] sop` before the messages or the prompt. */
const PREFIX = 2;
/** `<|role|>`, the encoded metadata + "\n" (its bytes plus two pieces) and the leading-space piece of the content. */
const PER_MESSAGE = 4;

/** The upper bound used until the model's tokenizer is at hand. */
export const UPPER_BOUND_COUNTER: TokenCounter = {
  chat: (turns, answerMetadata) => {
    let n = PREFIX + 1; // and `<|assistant|>` at the end
    for (const t of turns) n += PER_MESSAGE + Buffer.byteLength(t.metadata, 'utf8') + Buffer.byteLength(t.content, 'utf8');
    if (answerMetadata !== undefined) n += 3 + Buffer.byteLength(answerMetadata, 'utf8');
    return n;
  },
  text: (prompt) => PREFIX + Buffer.byteLength(prompt, 'utf8') + 1,
};

/** Texts whose token count is remembered; the cache starts over when full. */
const COUNT_CACHE_LIMIT = 10_000;
/** Longer texts are counted every time (they are rarely sent twice, and would crowd the cache). */
const COUNT_CACHE_MAX_CHARS = 2048;

/**
 * Exact counts with the model's tokenizer. The template encodes each message on its own
 * (`<|role|>`, "\n", the content), so a count is the sum of its messages' counts, and each
 * content's count is cached: a conversation resends its earlier turns with every new question,
 * and many users ask the same thing, so most encodes are saved.
 */
export function tokenizerCounter(tokenizer: ChatGLMTokenizer): TokenCounter {
  const newline = tokenizer.encode('\n').length;
  const cache = new Map<string, number>();
  const length = (text: string): number => {
    if (text.length > COUNT_CACHE_MAX_CHARS) return tokenizer.encode(text).length;
    let n = cache.get(text);
    if (n === undefined) {
      n = tokenizer.encode(text).length;
      if (cache.size >= COUNT_CACHE_LIMIT) cache.clear();
      cache.set(text, n);
    }
    return n;
  };
  return {
    chat: (turns, answerMetadata) => {
      let n = PREFIX + 1; // and `<|assistant|>` at the end
      for (const t of turns) n += 1 + (t.metadata === '' ? newline : length(`${t.metadata}\n`)) + length(t.content);
      if (answerMetadata !== undefined) n += length(`${answerMetadata}\n`);
      return n;
    },
    text: (prompt) => PREFIX + length(prompt),
  };
}

export function promptTokens(generate: GenerateRequestInput, counter: TokenCounter): number {
  if (generate.prompt_ids !== undefined) return generate.prompt_ids.length;
  if (generate.prompt !== undefined) return counter.text(generate.prompt);
  return counter.chat(chatTurnsOf(generate) ?? [], generate.answer_metadata);
}

/** A tokenizer.model is about a megabyte; anything far larger is not one. */
const MAX_TOKENIZER_BYTES = 64 * 1024 * 1024;

/**
 * The gateway's current counter: the upper bound, until a tokenizer is loaded from a file at
 * start or fetched from a healthy worker (tried every `intervalMs` until one answers).
 */
export class PromptCounter {
  private counter: TokenCounter = UPPER_BOUND_COUNTER;
  /** The model's tokenizer once it is at hand (`/tokenize` uses it too). */
  tokenizer: ChatGLMTokenizer | null = null;
  private timer: Repeating | undefined;
  private fetching = false;
  private warned = false;

  constructor(private readonly log: Logger) {}

  get exact(): boolean {
    return this.counter !== UPPER_BOUND_COUNTER;
  }

  count(generate: GenerateRequestInput): number {
    return promptTokens(generate, this.counter);
  }

  /** Loads the tokenizer from a file; a file that cannot be used stops start-up. */
  async loadFile(path: string): Promise<void> {
    this.use(await ChatGLMTokenizer.fromFile(path));
    this.log.info({ path }, 'prompt tokens counted with the tokenizer file');
  }

  /** Asks healthy workers for their tokenizer until one gives it. */
  fetchFromWorkers(pool: WorkerPool, intervalMs: number, timeoutMs: number): void {
    const attempt = async () => {
      const target = pool.pick(undefined);
      if (!target || this.fetching || this.exact) return;
      this.fetching = true;
      try {
        const res = await request(`${target.url}/v1/tokenizer`, { headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
        if (res.statusCode !== 200) {
          await res.body.dump();
          throw new Error(`GET /v1/tokenizer answered ${res.statusCode}`);
        }
        const length = Number(res.headers['content-length'] ?? 0);
        if (length > MAX_TOKENIZER_BYTES) {
          await res.body.dump();
          throw new Error(`GET /v1/tokenizer sent ${length} bytes`);
        }
        const bytes = new Uint8Array(await res.body.arrayBuffer());
        this.use(await ChatGLMTokenizer.fromBytes(bytes, `${target.url}/v1/tokenizer`));
        this.stop();
        this.log.info({ worker: target.url }, 'prompt tokens counted with the tokenizer of a worker');
      } catch (err) {
        if (!this.warned) this.log.warn({ worker: target.url, err: (err as Error).message }, 'no tokenizer from the worker yet: prompt tokens are estimated from above');
        this.warned = true;
      } finally {
        this.fetching = false;
      }
    };
    this.timer = repeat(intervalMs, attempt);
    void attempt();
  }

  private use(tokenizer: ChatGLMTokenizer): void {
    this.tokenizer = tokenizer;
    this.counter = tokenizerCounter(tokenizer);
  }

  stop(): void {
    this.timer?.stop();
    this.timer = undefined;
  }
}
