/**
 * One answer, from a validated request to the last byte, for all three chat/completion routes.
 *
 * Order: answer hooks (`beforeAnswer`: where the token budget is reserved) → degrade switch →
 * breaker-wrapped dispatch → render (JSON, or SSE) → answer hooks (`onAnswerEnd`, exactly once,
 * with the usage, whatever the outcome). `forced` answers from the fallback without touching a
 * worker; in `auto`, a breaker that is open, no healthy worker, or a failure before the first
 * token gives the fallback answer; in `off` those give 503 with Retry-After.
 *
 * Headers are sent only once the first token (or the fallback answer) is in hand, so an
 * answer's status is always true: 200 means there is an answer. A failure after that is an
 * `error` event in the SSE stream (its 200 is already on the wire). A non-streamed request has
 * sent nothing yet, so its partial text is dropped and it is answered like a failure before the
 * first token: the fallback answer unless the switch is `off`, then a 502/504.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError, errorEnvelope, type ErrorCode } from '../../shared/errors.js';
import type { FinishReason, GenerateRequestInput, TokenLogprob, Usage } from '../../protocol/schemas.js';
import type { Tenant } from '../plugins/auth.js';
import type { DispatchBreaker } from '../dispatch/breaker.js';
import { Cancel } from '../dispatch/cancel.js';
import type { DegradeSwitch } from '../fallback/degrade.js';
import type { WorkerStream } from '../dispatch/dispatcher.js';
import { answerJson } from './body-json.js';
import { deltaTemplate, sourceOf, type AnswerFinish, type AnswerFormat, type AnswerMeta, type KnowledgeSource } from './formats.js';
import { ToolReply, type AnswerTools, type OpenAIToolCall } from './tool-reply.js';
import type { Degraded, FallbackAnswer, FallbackAnswerer, FallbackReason } from '../fallback/knowledge-base.js';
import type { GatewayMetrics } from '../plugins/metrics.js';
import { eventError } from '../dispatch/worker-response.js';

export type AnswerRoute = 'chat' | 'chat_completions' | 'completions';

/** What the answer hooks see of a request: who asks, and what will be sent to a worker. */
export interface AnswerContext {
  request: FastifyRequest;
  /** For headers that must go out with the answer, streamed or not (the rate-limit headers). */
  reply: FastifyReply;
  tenant: Tenant;
  route: AnswerRoute;
  model: string;
  adapter: string | undefined;
  /** The worker request: messages, prompt or prompt_ids, and max_tokens. */
  generate: GenerateRequestInput;
  stream: boolean;
}

export type AnswerOutcome = 'done' | 'cancelled' | 'failed' | 'degraded' | 'refused';

export interface AnswerEnd {
  outcome: AnswerOutcome;
  /** Tokens the worker used (counted as they streamed when it did not finish); zeros for fallback answers. */
  usage: Usage;
  degraded: Degraded | false;
  /** The worker that streamed the answer (absent when none started it). */
  worker?: string;
  /**
   * The failure of a streamed answer after its headers had left: it reached the client as an SSE
   * error chunk, never as an HTTP error (absent otherwise, and for a client that went away).
   */
  streamError?: ErrorCode;
}

/**
 * The seam for per-answer accounting (the token budget). `beforeAnswer` runs after validation
 * and before any worker is touched; it may throw an AppError (429) to refuse. `onAnswerEnd`
 * runs exactly once for every answer whose `beforeAnswer` returned, when it is done, cancelled,
 * failed, answered by the fallback, or refused by a later hook.
 */
export interface AnswerHooks {
  beforeAnswer?(ctx: AnswerContext): void | Promise<void>;
  onAnswerEnd?(ctx: AnswerContext, end: AnswerEnd): void;
}

export interface AnswerPlan {
  route: AnswerRoute;
  /** The reply may be tool calls; null: plain text only. */
  tools: AnswerTools | null;
  format: AnswerFormat;
  model: string;
  adapter: string | undefined;
  generate: GenerateRequestInput;
  /** The text the knowledge base is searched with. */
  question: string;
  /** The knowledge-base entries put into the prompt (answer/knowledge.ts); null or absent: not asked for. */
  sources?: KnowledgeSource[] | null;
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
}

export interface AnswererOptions {
  totalTimeoutMs: number;
  retryAfterSeconds: number;
  logContent: boolean;
}

const SSE_DONE = 'data: [DONE]\n\n';
const JSON_TYPE = 'application/json; charset=utf-8';
const ZERO_USAGE: Usage = Object.freeze({ prompt_tokens: 0, completion_tokens: 0 }) as Usage;

function sse(obj: object): string {
  return `data: ${JSON.stringify(obj)}\n\n`;
}

function fallbackReason(err: AppError): FallbackReason {
  switch (err.code) {
    case 'BREAKER_OPEN':
      return 'breaker_open';
    case 'NO_HEALTHY_WORKER':
      return 'no_healthy_worker';
    case 'WORKER_TIMEOUT':
      return 'timeout';
    case 'OVERLOADED':
      return 'overloaded';
    default:
      return 'worker_failed';
  }
}

/** A body already written as JSON text: Fastify sends a string with its content type as it is. */
function sendJson(reply: FastifyReply, json: string): string {
  reply.type(JSON_TYPE);
  return json;
}

/** `x-knowledge-sources`: the ids of the sources, comma-separated (empty when none); absent when not asked for. */
function setSourcesHeader(reply: FastifyReply, sources: KnowledgeSource[] | null): void {
  if (sources) reply.header('x-knowledge-sources', sources.map((s) => s.id).join(','));
}

export class Answerer {
  /** Cancellations of the answers in progress, so that a drain can cut what outlives it. */
  private readonly active = new Set<Cancel>();
  private draining = false;
  private readonly fallbackChildren = new Map<string, { inc(): void }>();

  constructor(
    private readonly breaker: DispatchBreaker,
    private readonly degrade: DegradeSwitch,
    private readonly fallback: FallbackAnswerer,
    private readonly metrics: GatewayMetrics,
    readonly hooks: AnswerHooks[],
    private readonly options: AnswererOptions,
  ) {}

  get inProgress(): number {
    return this.active.size;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Stops taking answers; waits up to `timeoutMs` for those in progress, then cancels the rest.
   * Resolves when none is left.
   */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    const deadline = Date.now() + timeoutMs;
    while (this.active.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.active) c.abort(new AppError('SERVICE_UNAVAILABLE', 'the gateway is shutting down'));
    while (this.active.size > 0) await new Promise((r) => setTimeout(r, 10));
  }

  async answer(request: FastifyRequest, reply: FastifyReply, plan: AnswerPlan): Promise<unknown> {
    if (this.draining) {
      throw new AppError('NOT_READY', 'the gateway is shutting down', { retryAfter: this.options.retryAfterSeconds });
    }
    const tenant = request.tenant!;
    // Who it is for and the tier of its key: the worker shares itself fairly between tenants.
    plan.generate.tenant = tenant.name.slice(0, 256);
    plan.generate.tier = tenant.tier;
    const ctx: AnswerContext = {
      request,
      reply,
      tenant,
      route: plan.route,
      model: plan.model,
      adapter: plan.adapter,
      generate: plan.generate,
      stream: plan.stream,
    };
    const entered = await this.before(ctx);
    const startedAt = performance.now() - reply.elapsedTime;
    const cancel = new Cancel();
    this.active.add(cancel);
    const onClose = () => {
      if (!reply.raw.writableEnded) cancel.abort(new AppError('CANCELLED', 'the client went away'));
    };
    reply.raw.on('close', onClose);
    const timer = setTimeout(
      () => cancel.abort(new AppError('WORKER_TIMEOUT', `the answer took longer than ${this.options.totalTimeoutMs} ms`)),
      this.options.totalTimeoutMs,
    );
    this.metrics.inFlight.inc();
    const end: AnswerEnd = { outcome: 'failed', usage: ZERO_USAGE, degraded: false };
    try {
      const source = await this.source(plan, cancel);
      if ('degraded' in source) {
        end.outcome = 'degraded';
        end.degraded = source.degraded;
        if (this.options.logContent) request.log.info({ question: plan.question, answer: source.text, degraded: source.degraded }, 'fallback answer');
        return this.sendFallback(request, reply, plan, source);
      }
      return await this.sendWorker(request, reply, plan, source, cancel, startedAt, end);
    } catch (err) {
      if (cancel.reason?.code === 'CANCELLED') end.outcome = 'cancelled';
      throw err;
    } finally {
      clearTimeout(timer);
      reply.raw.off('close', onClose);
      this.active.delete(cancel);
      this.metrics.inFlight.dec();
      this.metrics.e2eByOutcome[end.outcome === 'refused' ? 'failed' : end.outcome].observe((performance.now() - startedAt) / 1000);
      this.after(ctx, entered, end);
    }
  }

  /** Runs `beforeAnswer` of each hook; when one refuses, the ones already entered are ended. */
  private async before(ctx: AnswerContext): Promise<number> {
    let entered = 0;
    try {
      for (const h of this.hooks) {
        if (h.beforeAnswer) await h.beforeAnswer(ctx);
        entered++;
      }
    } catch (err) {
      this.after(ctx, entered, { outcome: 'refused', usage: ZERO_USAGE, degraded: false });
      throw err;
    }
    return entered;
  }

  private after(ctx: AnswerContext, entered: number, end: AnswerEnd): void {
    for (let i = 0; i < entered; i++) {
      try {
        this.hooks[i]!.onAnswerEnd?.(ctx, end);
      } catch (err) {
        ctx.request.log.error({ err }, 'answer hook failed at the end of an answer');
      }
    }
  }

  /** A started worker stream, or the fallback's answer; throws when neither may answer. */
  private async source(plan: AnswerPlan, cancel: Cancel): Promise<WorkerStream | FallbackAnswer> {
    const { mode, source } = this.degrade.state;
    if (mode === 'forced') return this.fallbackAnswer(plan, source, 'forced');
    try {
      return await this.breaker.fire(plan.generate, cancel);
    } catch (err) {
      const e = err instanceof AppError ? err : new AppError('WORKER_ERROR', (err as Error).message, { cause: err });
      if (e.isClientError) throw e;
      const reason = cancel.reason?.code;
      if (reason === 'CANCELLED' || reason === 'SERVICE_UNAVAILABLE') throw cancel.reason;
      if (mode === 'off') {
        throw new AppError('SERVICE_UNAVAILABLE', `no worker could answer (${e.message}) and the fallback is off`, {
          retryAfter: this.options.retryAfterSeconds,
          cause: e,
        });
      }
      return this.fallbackAnswer(plan, source, fallbackReason(e));
    }
  }

  private fallbackAnswer(plan: AnswerPlan, source: 'kb' | 'canned', reason: FallbackReason): FallbackAnswer {
    const answer = this.fallback.answer(plan.question, source, reason);
    const key = `${answer.degraded.source}:${reason}`;
    let child = this.fallbackChildren.get(key);
    if (!child) {
      child = this.metrics.fallbackAnswers.labels(answer.degraded.source, reason);
      this.fallbackChildren.set(key, child);
    }
    child.inc();
    return answer;
  }

  private meta(request: FastifyRequest, plan: AnswerPlan, degraded: Degraded | false, sources: KnowledgeSource[] | null): AnswerMeta {
    return {
      id: `${plan.format.idPrefix}${request.id}`,
      created: Math.floor(Date.now() / 1000),
      model: plan.model,
      adapter: plan.adapter ?? null,
      degraded,
      sources,
      includeUsage: plan.includeUsage,
      logprobs: plan.logprobs,
    };
  }

  private sendFallback(request: FastifyRequest, reply: FastifyReply, plan: AnswerPlan, answer: FallbackAnswer): unknown {
    // No model read the prompt's entries: the sources of a degraded answer are what its text is
    // (the fallback's entry), or none for a canned text.
    const sources = plan.sources ? (answer.match ? [sourceOf(answer.match)] : []) : null;
    const meta = this.meta(request, plan, answer.degraded, sources);
    setSourcesHeader(reply, sources);
    if (!plan.stream) {
      reply.header('x-degraded', answer.degraded.source).header('x-degraded-reason', answer.degraded.reason);
      return sendJson(reply, answerJson(plan.format, meta, { text: answer.text, finish: 'stop', usage: ZERO_USAGE, logprobs: [] }));
    }
    const raw = this.openSse(request, reply, answer.degraded);
    let out = '';
    const head = plan.format.head(meta);
    if (head) out += sse(head);
    out += sse(plan.format.delta(meta, answer.text, undefined, 0));
    for (const t of plan.format.tail(meta, 'stop', ZERO_USAGE)) out += sse(t);
    raw.end(out + SSE_DONE);
    return reply;
  }

  private openSse(request: FastifyRequest, reply: FastifyReply, degraded: Degraded | false) {
    reply.hijack();
    const raw = reply.raw;
    const headers: Record<string, string> = {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
      'x-request-id': request.id,
    };
    if (degraded) {
      headers['x-degraded'] = degraded.source;
      headers['x-degraded-reason'] = degraded.reason;
    }
    for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined && !(k in headers)) headers[k] = String(v);
    raw.writeHead(200, headers);
    return raw;
  }

  /** Renders a worker stream; fills `end` as it goes. */
  private async sendWorker(
    request: FastifyRequest,
    reply: FastifyReply,
    plan: AnswerPlan,
    ws: WorkerStream,
    cancel: Cancel,
    startedAt: number,
    end: AnswerEnd,
  ): Promise<unknown> {
    const sources = plan.sources ?? null;
    const meta = this.meta(request, plan, false, sources);
    setSourcesHeader(reply, sources);
    const raw = plan.stream ? this.openSse(request, reply, false) : null;
    let text = '';
    const logprobs: TokenLogprob[] = [];
    let promptTokens = 0;
    let completionTokens = 0;
    let lastTokenAt = 0;
    let finish: FinishReason | null = null;
    let usage: Usage | null = null;
    let failure: AppError | null = null;
    let template: { before: string; after: string } | undefined;
    // A reply that may be calls: text streams until a turn looks like a call, then is held.
    const tools = plan.tools ? new ToolReply(plan.tools) : null;
    // SSE text waiting to be written: events that arrived together leave in one write, and
    // nothing waits, since it is written before the next event is awaited.
    let out = '';
    if (raw) {
      const head = plan.format.head(meta);
      if (head) out = sse(head);
    }
    try {
      for (;;) {
        let next = ws.next();
        if (next instanceof Promise) {
          if (out !== '') {
            raw!.write(out);
            out = '';
          }
          next = await next;
        }
        const event = next;
        if (event === undefined) throw new AppError('WORKER_ERROR', 'the worker ended the stream without an end event');
        if (event.type === 'start') {
          promptTokens = event.prompt_tokens;
        } else if (event.type === 'token') {
          const now = performance.now();
          if (lastTokenAt === 0) this.metrics.ttft.observe((now - startedAt) / 1000);
          else this.metrics.interToken.observe((now - lastTokenAt) / 1000);
          lastTokenAt = now;
          completionTokens += event.ids.length;
          const piece = tools ? tools.text(event.text, event.segment) : event.text;
          // A token event may carry no text (bytes of a character still incomplete): no chunk then.
          if (raw && (piece !== '' || (meta.logprobs && event.logprobs && !tools))) {
            if (meta.logprobs) out += sse(plan.format.delta(meta, piece, event.logprobs, text.length));
            else {
              template ??= deltaTemplate(plan.format, meta);
              out += template.before + JSON.stringify(piece) + template.after;
            }
          }
          text += piece;
          if (!raw && event.logprobs) logprobs.push(...event.logprobs);
        } else if (event.type === 'end') {
          finish = event.finish_reason;
          usage = event.usage;
          break;
        } else if (event.type === 'segment') {
          tools?.segment(event.index, event.metadata);
        } else if (event.type === 'error') {
          throw eventError(event);
        }
      }
    } catch (err) {
      failure = cancel.reason
        ? cancel.reason
        : err instanceof AppError
          ? err
          : new AppError('WORKER_ERROR', (err as Error).message, { cause: err });
    } finally {
      ws.close();
    }
    end.worker = ws.worker.url;
    end.usage = usage ?? { prompt_tokens: promptTokens, completion_tokens: completionTokens };
    this.metrics.promptTokens.inc(end.usage.prompt_tokens);
    this.metrics.completionTokens.inc(end.usage.completion_tokens);
    if (failure) {
      end.outcome = failure.code === 'CANCELLED' ? 'cancelled' : 'failed';
      if (failure.code !== 'CANCELLED') request.log.warn({ code: failure.code, worker: ws.worker.url, err: failure.message }, 'answer failed after the first token');
      if (!raw) {
        const mode = this.degrade.state.mode;
        if (failure.code === 'CANCELLED' || failure.code === 'SERVICE_UNAVAILABLE' || mode === 'off') throw failure;
        // The worker's tokens stay counted in `end.usage`: they were spent.
        const answer = this.fallbackAnswer(plan, this.degrade.state.source, fallbackReason(failure));
        end.outcome = 'degraded';
        end.degraded = answer.degraded;
        return this.sendFallback(request, reply, plan, answer);
      }
      if (!raw.destroyed) {
        if (failure.code !== 'CANCELLED') end.streamError = failure.code;
        raw.end(out + sse(errorEnvelope(failure)));
      }
      return reply;
    }
    end.outcome = finish === 'cancelled' ? 'cancelled' : 'done';
    let answerFinish: AnswerFinish = finish!;
    let toolCalls: OpenAIToolCall[] = [];
    if (tools) {
      const read = tools.end();
      toolCalls = read.calls;
      if (toolCalls.length > 0) answerFinish = 'tool_calls';
      if (raw) {
        if (read.unsent !== '') out += sse(plan.format.delta(meta, read.unsent, undefined, text.length));
        if (toolCalls.length > 0 && plan.format.toolCalls) for (const c of plan.format.toolCalls(meta, toolCalls)) out += sse(c);
      }
      text = read.text;
    }
    if (this.options.logContent) request.log.info({ question: plan.question, answer: text, tool_calls: toolCalls }, 'answer');
    if (raw) {
      for (const t of plan.format.tail(meta, answerFinish, end.usage)) out += sse(t);
      raw.end(out + SSE_DONE);
      return reply;
    }
    return sendJson(reply, answerJson(plan.format, meta, { text, finish: answerFinish, usage: end.usage, logprobs, toolCalls }));
  }
}
