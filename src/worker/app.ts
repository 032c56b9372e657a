/**
 * The worker's HTTP app (Fastify), built by a function so that tests can `inject()` into it; only
 * the CLI listens. Routes:
 *   POST /v1/generate   GenerateRequest in, NDJSON events out (src/protocol/)
 *   GET  /healthz       the process is alive
 *   GET  /readyz        200 once the model is loaded, 503 before (and while shutting down)
 *   GET  /metrics       Prometheus text
 *   GET  /v1/adapters   WorkerModelInfo
 *   GET  /v1/tokenizer  the tokenizer.model bytes, so a gateway can count tokens without the model
 *
 * A request the worker cannot start gets a plain HTTP error with the error envelope (bad input
 * 4xx, queue full 503); once `start` is written, failures are `error` events and the stream
 * ends. A client that disconnects cancels its generation.
 */
import { PassThrough } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyBaseLogger } from 'fastify';
import { AppError, errorEnvelope, paramOf } from '../shared/errors.js';
import { toAppError } from '../shared/http-errors.js';
import { NDJSON_CONTENT_TYPE, ndjsonLine } from '../protocol/ndjson.js';
import { GenerateRequestSchema, type GenerateRequest, type Readyz, type WorkerModelInfo } from '../protocol/schemas.js';
import { resolveAdapter } from './adapters.js';
import { promptIdsOf } from '../tokenizer/prompt-ids.js';
import type { WorkerMetrics } from './metrics.js';
import type { WorkerRuntime } from './runtime.js';
import type { ScheduledRequest } from './scheduler.js';


const GENERATE_ROUTE = '/v1/generate';

export interface WorkerAppOptions {
  metrics: WorkerMetrics;
  /** A pino logger; none: no logging (tests). */
  logger?: FastifyBaseLogger;
  /** Largest request body in bytes. */
  bodyLimit?: number;
}

export interface WorkerApp {
  app: FastifyInstance;
  /** Makes the app ready (the model is loaded). */
  setRuntime(runtime: WorkerRuntime): void;
  /** Takes readiness away (shutdown) and refuses new generations. */
  setDraining(): void;
}

/** Turns a validated request into token ids and an adapter; 4xx AppErrors for what does not fit. */
export function prepareRequest(runtime: WorkerRuntime, req: GenerateRequest): ScheduledRequest {
  const { tokenizer, engine } = runtime;
  const promptIds = promptIdsOf(tokenizer, req);
  if (req.prompt_ids) {
    const bad = promptIds.findIndex((id) => id >= engine.info.vocabSize);
    if (bad >= 0) {
      throw new AppError('INVALID_REQUEST', `token id ${promptIds[bad]} is outside the model's vocabulary (${engine.info.vocabSize})`, {
        param: `prompt_ids.${bad}`,
      });
    }
  }
  return {
    id: req.id,
    promptIds,
    adapter: resolveAdapter(runtime.adapters, req.adapter),
    maxTokens: req.max_tokens,
    sampling: {
      temperature: req.temperature,
      top_p: req.top_p,
      top_k: req.top_k,
      repetition_penalty: req.repetition_penalty,
    },
    seed: req.seed,
    stop: req.stop ?? [],
    logprobs: req.logprobs,
    chat: req.messages !== undefined || req.turns !== undefined,
    answerMetadata: req.answer_metadata,
    tenant: req.tenant,
    tier: req.tier,
  };
}

export function buildWorkerApp(options: WorkerAppOptions): WorkerApp {
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    bodyLimit: options.bodyLimit ?? 4 * 1024 * 1024,
    // Generations stream for as long as they take; the scheduler bounds the work.
    requestTimeout: 0,
  });
  // The protocol is JSON only; Fastify would otherwise hand a text/plain body to the route.
  app.removeContentTypeParser('text/plain');
  const { metrics } = options;
  let runtime: WorkerRuntime | null = null;
  let draining = false;

  app.setErrorHandler((err, request, reply) => {
    const appError = toAppError(err);
    if (appError.code === 'INTERNAL') request.log.error({ err }, 'unhandled error');
    // Every refusal of a generation passes here, whichever step refused it (body parser,
    // validation, tokenizer, adapter, scheduler), so it is counted here and only here.
    if (request.routeOptions.url === GENERATE_ROUTE) metrics.rejected.inc({ code: appError.code });
    if (appError.retryAfter !== undefined) void reply.header('retry-after', String(appError.retryAfter));
    void reply.status(appError.status).send(errorEnvelope(appError));
  });

  app.setNotFoundHandler((request, reply) => {
    const err = new AppError('NOT_FOUND', `no route ${request.method} ${request.url}`);
    void reply.status(err.status).send(errorEnvelope(err));
  });

  // Polled every few seconds by every gateway: their request lines would drown the log.
  const polled = { logLevel: 'warn' } as const;

  app.get('/healthz', polled, async () => ({ status: 'ok' }));

  app.get('/readyz', polled, async (_request, reply) => {
    const body: Readyz =
      runtime && !draining
        ? {
            ready: true,
            model: runtime.engine.info.model,
            execution_provider: runtime.engine.info.executionProvider,
            load: runtime.scheduler.load(),
          }
        : { ready: false };
    return reply.status(body.ready ? 200 : 503).send(body);
  });

  app.get('/metrics', polled, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  const requireRuntime = (): WorkerRuntime => {
    if (!runtime) throw new AppError('NOT_READY', 'the model is still loading', { retryAfter: 1 });
    return runtime;
  };

  app.get('/v1/adapters', polled, async () => {
    const rt = requireRuntime();
    const info: WorkerModelInfo = {
      model: rt.engine.info.model,
      context_length: rt.engine.info.contextLength,
      adapter_mode: rt.adapters.mode,
      adapters: [...rt.adapters.byName.values()].map((a) => a.info),
    };
    return info;
  });

  app.get('/v1/tokenizer', polled, async (_request, reply) => {
    const rt = requireRuntime();
    return reply.type('application/octet-stream').send(Buffer.from(rt.tokenizer.modelBytes));
  });

  app.post(GENERATE_ROUTE, async (request, reply) => {
    const parsed = GenerateRequestSchema.safeParse(request.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new AppError('INVALID_REQUEST', `${paramOf(issue.path) ?? 'body'}: ${issue.message}`, { param: paramOf(issue.path) });
    }
    const rt = requireRuntime();
    if (draining) throw new AppError('NOT_READY', 'the worker is shutting down', { retryAfter: 1 });
    const scheduled: ScheduledRequest = prepareRequest(rt, parsed.data);
    const stream = new PassThrough();
    let finished = false;
    const handle = rt.scheduler.submit(scheduled, (event) => {
      if (finished) return;
      stream.write(ndjsonLine(event));
      if (event.type === 'end' || event.type === 'error') {
        finished = true;
        stream.end();
      }
    });
    reply.raw.on('close', () => {
      if (!finished) {
        finished = true;
        handle.cancel();
        stream.destroy();
      }
    });
    return reply.header('content-type', NDJSON_CONTENT_TYPE).header('cache-control', 'no-store').send(stream);
  });

  return {
    app,
    setRuntime(rt) {
      runtime = rt;
    },
    setDraining() {
      draining = true;
    },
  };
}
