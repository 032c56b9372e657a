/**
 * The simulated engine (`WORKER_ENGINE=sim`): a product mode for tests, demos and load tests on
 * machines without a GPU (as llm-d's inference simulator is for vLLM), not a test double. It
 * needs only the model's tokenizer; everything around it is the real worker: the scheduler,
 * sampling, stop ids and strings, reply post-processing, segments and streaming.
 *
 * Replies: when a sequence's prompt is in, the engine picks its reply from the script
 * (sim-script.ts) by the prompt's last user message (the whole prompt's text when it has no user
 * turn), or else a legal-sounding Chinese filler as long as the context (so the request's
 * max_tokens or the context ends it). A scripted reply ends with the eos id. When the prompt
 * already holds the answer's metadata line (a named tool_choice wrote it after `<|assistant|>`)
 * and the reply starts with that line, the rest of the reply is what is written.
 *
 * Logits make the next token of the reply the only one sampling can pick: +1000 for it, −1000
 * for every other id. The gap of 2000 survives everything the sampler does: temperature ≤ 2
 * leaves ≥ 1000 (e^−1000 is 0 next to 1, so no top-k, top-p or draw can take another id); a
 * repetition penalty p divides the reply token's positive logit and multiplies negative ones, so
 * p ≥ 1 leaves ≥ 1100 and p < 1 only widens the gap (for any p above 1e−35, where float32
 * overflows); greedy takes the largest. Logprobs are 0 for the reply token, −2000 for the rest.
 *
 * Timing: a sequence's first token is due `ttftMs` after it was opened (admitted). The engine
 * tells the scheduler when it may prefill it (`readyAt`), so that waiting never holds the loop;
 * asked earlier, it waits out the rest itself. While a batch is decoding, the scheduler only
 * looks between steps, so `readyAt` is then half a step before the due time: the first token
 * comes at the step boundary nearest to it (within ±itlMs/2) instead of always at the next one,
 * which would add up to a whole step to every time to first token under load. A decode step
 * takes `itlMs` for the whole batch on a step clock: due one step after the step before, or at
 * once when the loop comes back late, so the scheduler's own time between steps and timer delays
 * on a busy machine are part of the step, not added to it; after an idle pause the clock starts
 * from the call. Waits are timers: the event loop stays free.
 */
import type { ChatGLMTokenizer } from '../../tokenizer/tokenizer.js';
import { sleep } from '../../shared/net.js';
import type { EngineAdapter, EngineInfo, EngineSequence, InferenceEngine, PrefixCacheStats } from './engine.js';
import { encodeReply, type SimScriptEntry } from './sim-script.js';

/** What the filler writes: an empty metadata line, then this paragraph over and over. */
export const SIM_FILLER_TEXT =
  '根据《中华人民共和国民法典》的相关规定，当事人应当按照约定全面履行自己的义务。' +
  '一方不履行合同义务或者履行合同义务不符合约定的，应当承担继续履行、采取补救措施或者赔偿损失等违约责任。' +
  '建议您保留好合同、转账记录、聊天记录等证据，先与对方协商解决；协商不成的，可以向人民法院提起诉讼，' +
  '诉讼时效期间为三年，自权利人知道或者应当知道权利受到损害以及义务人之日起计算。';

/** The two logit values: the reply's next token, and every other id (module comment). */
const NEXT_LOGIT = 1000;
const OTHER_LOGIT = -1000;
/** Pre-written replies cached per script entry and metadata line; the cache starts over when full. */
const PREWRITTEN_CACHE_LIMIT = 1024;

export interface SimEngineOptions {
  tokenizer: ChatGLMTokenizer;
  script: readonly SimScriptEntry[];
  model: string;
  contextLength: number;
  /** Width of a logits row (the model's padded vocabulary, at least the tokenizer's). */
  vocabSize: number;
  maxSequences: number;
  ttftMs: number;
  itlMs: number;
}

class SimSequence implements EngineSequence {
  length = 0;
  readonly prompt: number[] = [];
  /** The reply's ids; the eos id follows them. */
  reply: readonly number[] = [];
  /** Index in the reply of the token the last logits chose. */
  next = 0;
  prefilled = false;
  constructor(
    readonly adapter: EngineAdapter | null,
    /** When the first token is due. */
    readonly firstTokenAt: number,
  ) {}
}

export class SimEngine implements InferenceEngine {
  readonly info: EngineInfo;
  private readonly tokenizer: ChatGLMTokenizer;
  private readonly script: ReadonlyArray<SimScriptEntry & { ids: number[] }>;
  private readonly filler: readonly number[];
  private readonly open_ = new Set<SimSequence>();
  private readonly logits: Float32Array;
  private readonly ttftMs: number;
  private readonly itlMs: number;
  private readonly prewritten = new Map<string, number[]>();
  private lastStepAt = -Infinity;
  /** Open sequences past their prefill: a batch is decoding while there is one. */
  private decoding = 0;

  constructor(options: SimEngineOptions) {
    const { tokenizer } = options;
    const vocabSize = Math.max(options.vocabSize, tokenizer.vocabSize);
    this.info = {
      model: options.model,
      vocabSize,
      contextLength: options.contextLength,
      maxSequences: options.maxSequences,
      executionProvider: 'sim',
    };
    this.tokenizer = tokenizer;
    this.script = options.script.map((e) => ({ ...e, ids: encodeReply(tokenizer, e.reply) }));
    this.filler = fillerIds(tokenizer, options.contextLength);
    this.logits = new Float32Array(options.maxSequences * vocabSize);
    this.ttftMs = options.ttftMs;
    this.itlMs = options.itlMs;
  }

  open(adapter: EngineAdapter | null): EngineSequence {
    if (this.open_.size >= this.info.maxSequences) throw new Error('no free sequence slot');
    const seq = new SimSequence(adapter, performance.now() + this.ttftMs);
    this.open_.add(seq);
    return seq;
  }

  readyAt(seq: EngineSequence): number {
    const s = seq as SimSequence;
    return this.decoding > 0 ? s.firstTokenAt - this.itlMs / 2 : s.firstTokenAt;
  }

  async prefill(seq: EngineSequence, ids: readonly number[]): Promise<Float32Array> {
    const s = this.check(seq, ids.length);
    const wait = this.readyAt(s) - performance.now();
    if (wait > 0) await sleep(wait);
    if (!s.prefilled) {
      s.prefilled = true;
      this.decoding++;
    }
    s.prompt.push(...ids);
    s.length += ids.length;
    // The prompt may come in several chunks; the reply is chosen again on each, the last one counts.
    s.reply = this.chooseReply(s.prompt);
    s.next = 0;
    const row = this.logits.subarray(0, this.info.vocabSize);
    this.writeRow(row, this.tokenAt(s, 0));
    return row;
  }

  /** The fed ids are what the last rows chose, so each reply moves on by one token. */
  async decode(seqs: readonly EngineSequence[], _ids: readonly number[]): Promise<Float32Array> {
    const list = seqs.map((q) => this.check(q, 1));
    const now = performance.now();
    // On the step clock while the loop keeps up: a step that comes late (a busy machine, a long
    // pause between steps) runs at once, so the average step stays itlMs. After a pause of more
    // than two steps the batch was idle, and the clock starts again from now.
    const due = now - this.lastStepAt > 2 * this.itlMs ? now + this.itlMs : Math.max(this.lastStepAt + this.itlMs, now);
    this.lastStepAt = due;
    if (due > now) await sleep(due - now);
    const v = this.info.vocabSize;
    list.forEach((s, i) => {
      s.length++;
      s.next++;
      this.writeRow(this.logits.subarray(i * v, (i + 1) * v), this.tokenAt(s, s.next));
    });
    return this.logits.subarray(0, list.length * v);
  }

  close(seq: EngineSequence): void {
    const s = seq as SimSequence;
    if (this.open_.delete(s) && s.prefilled) this.decoding--;
  }

  /** No KV is kept, so there is no prefix to reuse: the simulated time to first token is the same for every prompt. */
  async reusePrefix(): Promise<number> {
    return 0;
  }

  prefixCacheStats(): PrefixCacheStats {
    return { blocks: 0, bytes: 0, capacityBytes: 0, evictions: 0 };
  }

  kvTokensInUse(): number {
    let n = 0;
    for (const s of this.open_) n += s.length;
    return n;
  }

  async dispose(): Promise<void> {
    this.open_.clear();
    this.decoding = 0;
  }

  private check(seq: EngineSequence, adding: number): SimSequence {
    const s = seq as SimSequence;
    if (!this.open_.has(s)) throw new Error('sequence is not open');
    if (s.length + adding > this.info.contextLength) throw new Error('context overflow');
    return s;
  }

  private tokenAt(s: SimSequence, k: number): number {
    return k < s.reply.length ? s.reply[k]! : this.tokenizer.eosId;
  }

  private writeRow(row: Float32Array, id: number): void {
    row.fill(OTHER_LOGIT);
    row[id] = NEXT_LOGIT;
  }

  /** The scripted reply for a prompt, or the filler. */
  private chooseReply(prompt: readonly number[]): readonly number[] {
    if (this.script.length === 0) return this.filler;
    const { question, prewritten } = this.readPrompt(prompt);
    const i = this.script.findIndex((e) => question.includes(e.match));
    if (i < 0) return this.filler;
    const entry = this.script[i]!;
    if (prewritten === '' || !entry.reply.startsWith(prewritten)) return entry.ids;
    const key = `${i}\u0000${prewritten}`;
    let ids = this.prewritten.get(key);
    if (ids === undefined) {
      ids = encodeReply(this.tokenizer, entry.reply.slice(prewritten.length));
      if (this.prewritten.size >= PREWRITTEN_CACHE_LIMIT) this.prewritten.clear();
      this.prewritten.set(key, ids);
    }
    return ids;
  }

  /**
   * The text a script is matched against: the last user turn's content (its metadata line cut
   * off) — or the last tool result (`<|observation|>`) when it comes after it, so that a script
   * can answer the second round of a tool loop —, or every piece of the prompt when it has no
   * user turn; and the text already written after the final `<|assistant|>` (a pre-written
   * metadata line).
   */
  private readPrompt(prompt: readonly number[]): { question: string; prewritten: string } {
    const tok = this.tokenizer;
    const user = tok.specialTokens['<|user|>'];
    const assistant = tok.specialTokens['<|assistant|>'];
    const lastAssistant = prompt.lastIndexOf(assistant);
    const tail = lastAssistant >= 0 ? prompt.slice(lastAssistant + 1) : [];
    const prewritten = tail.some((id) => tok.isSpecial(id)) ? '' : tok.decode(tail);
    const at = Math.max(prompt.lastIndexOf(user), prompt.lastIndexOf(tok.specialTokens['<|observation|>']));
    if (at < 0) return { question: tok.decode(prompt.filter((id) => !tok.isSpecial(id))), prewritten };
    let end = at + 1;
    while (end < prompt.length && !tok.isSpecial(prompt[end]!)) end++;
    const turn = tok.decode(prompt.slice(at + 1, end));
    const nl = turn.indexOf('\n');
    return { question: nl >= 0 ? turn.slice(nl + 1) : turn, prewritten };
  }
}

/**
 * The filler as one text long enough to fill the context, encoded once: the paragraph repeated
 * and encoded as a whole reads on seamlessly, where its ids repeated would put the tokenizer's
 * word-start piece (a space) between the copies.
 */
function fillerIds(tokenizer: ChatGLMTokenizer, contextLength: number): number[] {
  const perCopy = Math.max(1, tokenizer.encode(SIM_FILLER_TEXT).length);
  return tokenizer.encode(`\n${SIM_FILLER_TEXT.repeat(Math.ceil(contextLength / perCopy) + 1)}`);
}
