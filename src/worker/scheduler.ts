/**
 * Continuous batching. One loop owns the queue and the running batch; nothing else touches the
 * engine. Each turn of the loop:
 *   1. drops cancelled sequences (their KV row is freed before anything else runs);
 *   2. admits queued requests while there is a free row and the next one's KV reservation
 *      (prompt + max new tokens) fits under `maxKvTokens`; which one is next is the admission
 *      policy's (`admission.ts`): fair between tenants by virtual token counters, or first come
 *      first served;
 *   3. prefills up to `prefillChunkTokens` prompt tokens (a long prompt takes several turns, so
 *      running sequences keep streaming), after taking what the engine's prefix cache holds of
 *      the prompt on its first turn; a sequence whose prompt is in takes its first token from
 *      the prefill logits and joins the decode batch; a sequence the engine says it cannot
 *      prefill yet (`readyAt`, the simulated engine's time to first token) is skipped, and an
 *      otherwise idle loop sleeps until the earliest one is ready;
 *   4. runs one decode step for every sequence in the batch and samples each row;
 *   5. yields to the event loop, so that sockets are written, new requests arrive and client
 *      disconnects are seen before the next step.
 * A finished or cancelled sequence leaves the batch at once and frees its row and reservation.
 *
 * Atomicity: the loop is the only writer of queue/batch state and awaits only engine calls;
 * `submit` and `cancel` only append to the queue or set a flag, and wake the loop. A failure of
 * an engine call ends the sequences it was for with an `error` event and the loop goes on.
 * The `end` event is the only success marker: a stream that stops without one failed.
 */
import { AppError } from '../shared/errors.js';
import type { FinishReason, GenerateEvent, TokenLogprob, WorkerLoad } from '../protocol/schemas.js';
import type { ChatGLMTokenizer } from '../tokenizer/tokenizer.js';
import type { EngineAdapter, EngineSequence, InferenceEngine } from './engine/engine.js';
import type { WorkerMetrics } from './metrics.js';
import { FcfsQueue, VtcQueue, type AdmissionQueue, type SchedulerPolicy } from './admission.js';
import { ReplyStream } from './reply-stream.js';
import { Sampler, TokenSet, createRng, type Rng, type SamplingParams } from './sampling.js';

/** A request that has been validated and tokenized: the only thing the scheduler accepts. */
export interface ScheduledRequest {
  id: string;
  promptIds: readonly number[];
  adapter: EngineAdapter | null;
  maxTokens: number;
  sampling: SamplingParams;
  seed?: number | undefined;
  stop: readonly string[];
  /** Top alternatives per token; undefined: no logprobs. */
  logprobs?: number | undefined;
  /** Apply ChatGLM3's reply post-processing (the request came as chat messages or turns). */
  chat: boolean;
  /** The answer's metadata line, written into the prompt (chat only). */
  answerMetadata?: string | undefined;
  /** Who it is for, for fair admission; absent: one anonymous tenant. */
  tenant?: string | undefined;
  tier?: string | undefined;
}

export type EventSink = (event: GenerateEvent) => void;

export interface SchedulerOptions {
  maxRunningSequences: number;
  maxKvTokens: number;
  maxQueue: number;
  prefillChunkTokens: number;
  /** Admission policy; default `fair`. */
  policy?: SchedulerPolicy | undefined;
  /** Tier name → weight for `fair` (tiers not named, and requests without one, weigh 1). */
  tierWeights?: Readonly<Record<string, number>> | undefined;
}

export interface GenerationHandle {
  /** Stops the generation; its KV memory is freed before the next decode step. */
  cancel(): void;
}

type State = 'queued' | 'prefill' | 'decode' | 'done';

class Sequence {
  state: State = 'queued';
  cancelled = false;
  engineSeq: EngineSequence | null = null;
  prefilled = 0;
  /** Whether the prefix cache was asked for this prompt. */
  lookedUp = false;
  generated = 0;
  lastToken = -1;
  readonly maxNew: number;
  readonly reserve: number;
  readonly reply: ReplyStream;
  readonly rng: Rng;
  readonly seen: TokenSet | undefined;
  readonly queuedAt = performance.now();
  startedAt = 0;
  firstTokenAt = 0;

  constructor(
    readonly req: ScheduledRequest,
    readonly sink: EventSink,
    contextLength: number,
    tokenizer: ChatGLMTokenizer,
    vocabSize: number,
  ) {
    this.maxNew = Math.min(req.maxTokens, contextLength - req.promptIds.length);
    this.reserve = req.promptIds.length + this.maxNew;
    this.reply = new ReplyStream(tokenizer, { chat: req.chat, stop: req.stop, answerMetadata: req.answerMetadata });
    this.rng = createRng(req.seed);
    const penalty = req.sampling.repetition_penalty;
    this.seen = penalty !== undefined && penalty !== 1 ? new TokenSet(vocabSize, req.promptIds) : undefined;
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Scheduler {
  private readonly queue: AdmissionQueue<Sequence>;
  private readonly tierWeights: Readonly<Record<string, number>>;
  private readonly running: Sequence[] = [];
  private readonly sampler: Sampler;
  private readonly rawRow: Float32Array;
  private readonly vocabSize: number;
  private readonly maxRunning: number;
  private reserved = 0;
  private evictionsSeen = 0;
  private wake: (() => void) | null = null;
  /** Set by submit/cancel/drain; the loop sleeps only when nothing happened during its turn. */
  private kicked = false;
  /** The earliest time a sequence the engine is not ready to prefill will be (engine.readyAt). */
  private nextReadyAt = Infinity;
  private accepting = true;
  private stopped = false;
  private readonly loopDone: Promise<void>;

  constructor(
    private readonly engine: InferenceEngine,
    private readonly tokenizer: ChatGLMTokenizer,
    private readonly options: SchedulerOptions,
    private readonly metrics: WorkerMetrics,
  ) {
    this.vocabSize = engine.info.vocabSize;
    this.maxRunning = Math.min(options.maxRunningSequences, engine.info.maxSequences);
    this.sampler = new Sampler(this.vocabSize);
    metrics.queueCapacity.set(options.maxQueue);
    metrics.kvTokensCapacity.set(options.maxKvTokens);
    this.rawRow = new Float32Array(this.vocabSize);
    this.tierWeights = options.tierWeights ?? {};
    this.queue = (options.policy ?? 'fair') === 'fair' ? new VtcQueue<Sequence>({ tierWeights: this.tierWeights }) : new FcfsQueue<Sequence>();
    this.loopDone = this.loop();
  }

  get queueLength(): number {
    return this.queue.length;
  }

  get runningCount(): number {
    return this.running.length;
  }

  /** The queue, the batch and the KV cache right now (the worker's /readyz reports it). */
  load(): WorkerLoad {
    return {
      queue_length: this.queue.length,
      running_sequences: this.running.length,
      kv_tokens_in_use: this.engine.kvTokensInUse(),
      kv_tokens_capacity: this.options.maxKvTokens,
    };
  }

  /**
   * Queues a request. Throws CONTEXT_LENGTH_EXCEEDED when it can never fit and OVERLOADED when the
   * queue is full or the worker is shutting down; otherwise the sink receives `start`, then
   * `token` events, then exactly one `end` or `error`.
   */
  submit(req: ScheduledRequest, sink: EventSink): GenerationHandle {
    const { contextLength } = this.engine.info;
    if (!this.accepting) throw new AppError('NOT_READY', 'the worker is shutting down', { retryAfter: 1 });
    if (req.promptIds.length >= contextLength) {
      throw new AppError(
        'CONTEXT_LENGTH_EXCEEDED',
        `the prompt has ${req.promptIds.length} tokens; this model's context is ${contextLength} tokens, and at least one must be left to generate`,
        { param: 'messages' },
      );
    }
    const seq = new Sequence(req, sink, contextLength, this.tokenizer, this.vocabSize);
    if (seq.reserve > this.options.maxKvTokens) {
      throw new AppError(
        'CONTEXT_LENGTH_EXCEEDED',
        `prompt (${req.promptIds.length}) + max_tokens (${seq.maxNew}) tokens exceed this worker's KV cache of ${this.options.maxKvTokens} tokens`,
        { param: 'max_tokens' },
      );
    }
    if (this.queue.length >= this.options.maxQueue) {
      throw new AppError('OVERLOADED', `the worker's queue is full (${this.options.maxQueue} waiting)`, { retryAfter: 1 });
    }
    this.queue.push(seq, { tenant: req.tenant, tier: req.tier });
    this.metrics.queueLength.set(this.queue.length);
    sink({ type: 'start', prompt_tokens: req.promptIds.length });
    this.kick();
    return {
      cancel: () => {
        if (seq.state === 'done' || seq.cancelled) return;
        seq.cancelled = true;
        this.kick();
      },
    };
  }

  /**
   * Stops taking requests, lets the running and queued ones finish for up to `graceMs`, then ends
   * the rest with an error event and stops the loop.
   */
  async drain(graceMs: number): Promise<void> {
    this.accepting = false;
    const deadline = performance.now() + graceMs;
    while ((this.queue.length > 0 || this.running.length > 0) && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    this.stopped = true;
    this.kick();
    await this.loopDone;
    const left = [...this.queue.items(), ...this.running];
    for (const seq of this.queue.items()) this.queue.remove(seq);
    for (const seq of left) this.fail(seq, 'NOT_READY', 'the worker shut down before the generation ended');
  }

  private kick(): void {
    this.kicked = true;
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.kicked = false;
      this.reapCancelled();
      this.admit();
      const prefilled = await this.prefillSome();
      const decoded = await this.decodeStep();
      this.updateGauges();
      if (this.stopped) break;
      if (prefilled || decoded) {
        await yieldToEventLoop();
      } else if (!this.kicked) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          if (this.nextReadyAt < Infinity) timer = setTimeout(() => this.kick(), this.nextReadyAt - performance.now());
        });
        clearTimeout(timer);
      }
    }
  }

  private updateGauges(): void {
    this.metrics.queueLength.set(this.queue.length);
    this.metrics.runningSequences.set(this.running.length);
    this.metrics.kvTokensInUse.set(this.engine.kvTokensInUse());
    this.metrics.kvTokensReserved.set(this.reserved);
    const cache = this.engine.prefixCacheStats();
    this.metrics.prefixCacheBlocks.set(cache.blocks);
    this.metrics.prefixCacheBytes.set(cache.bytes);
    this.metrics.prefixCacheCapacityBytes.set(cache.capacityBytes);
    if (cache.evictions > this.evictionsSeen) this.metrics.prefixCacheEvictedBlocks.inc(cache.evictions - this.evictionsSeen);
    this.evictionsSeen = cache.evictions;
  }

  private reapCancelled(): void {
    for (const seq of this.queue.items()) {
      if (seq.cancelled) {
        this.queue.remove(seq);
        this.finish(seq, 'cancelled');
      }
    }
    for (const seq of this.running.filter((s) => s.cancelled)) this.finish(seq, 'cancelled');
  }

  private admit(): void {
    while (this.queue.length > 0 && this.running.length < this.maxRunning) {
      const seq = this.queue.peek()!;
      if (this.reserved + seq.reserve > this.options.maxKvTokens) break;
      this.queue.admit(seq, seq.req.promptIds.length);
      try {
        seq.engineSeq = this.engine.open(seq.req.adapter);
      } catch (err) {
        this.fail(seq, 'INTERNAL', `could not start the generation: ${(err as Error).message}`);
        continue;
      }
      seq.state = 'prefill';
      seq.startedAt = performance.now();
      this.metrics.queueSeconds.observe((seq.startedAt - seq.queuedAt) / 1000);
      const tier = this.tierLabel(seq.req.tier);
      this.metrics.tierAdmitted.inc({ tier });
      this.metrics.tierQueueSeconds.observe({ tier }, (seq.startedAt - seq.queuedAt) / 1000);
      this.metrics.tierTokens.inc({ tier, kind: 'prompt' }, seq.req.promptIds.length);
      this.reserved += seq.reserve;
      this.running.push(seq);
    }
    this.updateGauges();
  }

  /** Prefills up to the chunk budget; returns whether it ran the model. */
  private async prefillSome(): Promise<boolean> {
    let budget = this.options.prefillChunkTokens;
    let ran = false;
    const now = performance.now();
    this.nextReadyAt = Infinity;
    // A snapshot: a sequence that finishes on its first token leaves `running` during the loop.
    for (const seq of [...this.running]) {
      if (budget <= 0) break;
      if (seq.state !== 'prefill' || seq.cancelled) continue;
      const readyAt = this.engine.readyAt?.(seq.engineSeq!) ?? 0;
      if (readyAt > now) {
        this.nextReadyAt = Math.min(this.nextReadyAt, readyAt);
        continue;
      }
      const prompt = seq.req.promptIds;
      if (!seq.lookedUp) {
        seq.lookedUp = true;
        try {
          seq.prefilled = await this.reusePrefix(seq);
        } catch (err) {
          this.fail(seq, 'INTERNAL', `prefix cache lookup failed: ${(err as Error).message}`);
          continue;
        }
      }
      const chunk = prompt.slice(seq.prefilled, seq.prefilled + budget);
      const t0 = performance.now();
      let logits: Float32Array;
      try {
        logits = await this.engine.prefill(seq.engineSeq!, chunk);
      } catch (err) {
        this.fail(seq, 'INTERNAL', `prefill failed: ${(err as Error).message}`);
        continue;
      }
      ran = true;
      const seconds = (performance.now() - t0) / 1000;
      this.metrics.prefillTokens.inc(chunk.length);
      this.metrics.prefillTokensPerSecond.set(chunk.length / Math.max(seconds, 1e-9));
      budget -= chunk.length;
      seq.prefilled += chunk.length;
      if (seq.prefilled < prompt.length || seq.cancelled) continue;
      seq.state = 'decode';
      this.takeToken(seq, logits);
    }
    return ran;
  }

  private async reusePrefix(seq: Sequence): Promise<number> {
    const reused = await this.engine.reusePrefix(seq.engineSeq!, seq.req.promptIds);
    this.metrics.prefixCacheLookups.inc();
    if (reused > 0) {
      this.metrics.prefixCacheHits.inc();
      this.metrics.prefixCacheCachedTokens.inc(reused);
    }
    return reused;
  }

  /** One decode step for every sequence in the batch; returns whether it ran the model. */
  private async decodeStep(): Promise<boolean> {
    const batch = this.running.filter((s) => s.state === 'decode' && !s.cancelled);
    if (batch.length === 0) return false;
    const t0 = performance.now();
    let logits: Float32Array;
    try {
      logits = await this.engine.decode(
        batch.map((s) => s.engineSeq!),
        batch.map((s) => s.lastToken),
      );
    } catch (err) {
      for (const seq of batch) this.fail(seq, 'INTERNAL', `decode step failed: ${(err as Error).message}`);
      return true;
    }
    const v = this.vocabSize;
    batch.forEach((seq, i) => {
      if (!seq.cancelled) this.takeToken(seq, logits.subarray(i * v, (i + 1) * v));
    });
    const seconds = (performance.now() - t0) / 1000;
    this.metrics.stepSeconds.observe(seconds);
    this.metrics.batchSize.observe(batch.length);
    this.metrics.decodeTokens.inc(batch.length);
    this.metrics.decodeTokensPerSecond.set(batch.length / Math.max(seconds, 1e-9));
    return true;
  }

  /** Samples the next token from the sequence's logits row, streams it, and ends the sequence when it is done. */
  private takeToken(seq: Sequence, row: Float32Array): void {
    const topN = seq.req.logprobs;
    let stats: { logZ: number; top: Array<{ id: number; logprob: number }> } | undefined;
    let raw = row;
    if (topN !== undefined) {
      stats = this.sampler.logprobs(row, topN);
      if (seq.seen) {
        // The repetition penalty rewrites the row in place; logprobs are of the model's own logits.
        this.rawRow.set(row);
        raw = this.rawRow;
      }
    }
    const id = this.sampler.sample(row, seq.req.sampling, seq.rng, seq.seen);
    seq.generated++;
    this.queue.served(seq, 1);
    this.metrics.tierTokens.inc({ tier: this.tierLabel(seq.req.tier), kind: 'output' });
    seq.lastToken = id;
    seq.seen?.add(id);
    if (seq.generated === 1) {
      seq.firstTokenAt = performance.now();
      this.metrics.timeToFirstToken.observe((seq.firstTokenAt - seq.queuedAt) / 1000);
    }
    if (this.tokenizer.stopIds.includes(id)) {
      this.finish(seq, 'stop');
      return;
    }
    const step = seq.reply.push(id);
    for (const s of step.segments) seq.sink({ type: 'segment', index: s.index, metadata: s.metadata });
    const event: GenerateEvent = { type: 'token', ids: [id], text: step.text };
    if (stats) event.logprobs = [this.logprobEntry(id, raw[id]! - stats.logZ, stats.top)];
    if (step.segment !== undefined) event.segment = step.segment;
    seq.sink(event);
    const stopped = step.stopped;
    if (stopped) this.finish(seq, 'stop');
    else if (seq.generated >= seq.maxNew) this.finish(seq, 'length');
  }

  private logprobEntry(id: number, logprob: number, top: Array<{ id: number; logprob: number }>): TokenLogprob {
    return {
      ...this.tokenizer.tokenInfo(id),
      id,
      logprob,
      top_logprobs: top.map((t) => ({ ...this.tokenizer.tokenInfo(t.id), id: t.id, logprob: t.logprob })),
    };
  }

  /** The metrics' tier label: a configured tier, `none`, or `other`, so the label set stays bounded. */
  private tierLabel(tier: string | undefined): string {
    if (tier === undefined) return 'none';
    return Object.hasOwn(this.tierWeights, tier) ? tier : 'other';
  }

  private release(seq: Sequence): void {
    const i = this.running.indexOf(seq);
    if (i >= 0) {
      this.queue.finished(seq);
      this.running.splice(i, 1);
      this.reserved -= seq.reserve;
    }
    if (seq.engineSeq) {
      this.engine.close(seq.engineSeq);
      seq.engineSeq = null;
    }
    seq.state = 'done';
    this.updateGauges();
  }

  private finish(seq: Sequence, reason: FinishReason): void {
    if (seq.state === 'done') return;
    const rest = reason === 'cancelled' ? null : seq.reply.end();
    this.release(seq);
    if (rest) {
      for (const s of rest.segments) seq.sink({ type: 'segment', index: s.index, metadata: s.metadata });
      if (rest.text) seq.sink({ type: 'token', ids: [], text: rest.text, ...(rest.segment === undefined ? {} : { segment: rest.segment }) });
    }
    const now = performance.now();
    const first = seq.firstTokenAt || now;
    const started = seq.startedAt || now;
    seq.sink({
      type: 'end',
      finish_reason: reason,
      usage: { prompt_tokens: seq.req.promptIds.length, completion_tokens: seq.generated },
      timings: {
        queue_ms: round(started - seq.queuedAt),
        prefill_ms: round(first - started),
        ttft_ms: round(first - seq.queuedAt),
        decode_ms: round(now - first),
        total_ms: round(now - seq.queuedAt),
      },
    });
    this.metrics.requests.inc({ finish_reason: reason });
    this.metrics.requestSeconds.observe((now - seq.queuedAt) / 1000);
  }

  private fail(seq: Sequence, code: string, message: string): void {
    if (seq.state === 'done') return;
    this.release(seq);
    seq.sink({ type: 'error', code, message });
    this.metrics.requests.inc({ finish_reason: 'error' });
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
