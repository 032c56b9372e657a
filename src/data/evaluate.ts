/**
 * Before/after evaluation against the running service: each sample's prompt turns go to
 * `POST /v1/chat/completions` (greedy: temperature 0), once per evaluated model, and the answers
 * are scored against the reference replies (metrics.ts).
 *
 * Models: the evaluated one ("微调后") is `adapter`, or the base model when no adapter is named;
 * `compare` ("微调前") is another model, where `base` means the base model. The base model is
 * found in `GET /v1/models`: the `parent` (or `root`) of the adapter's entry when the service
 * gives one (as vLLM lists LoRA adapters), else the first model that has no parent and is not the
 * adapter.
 *
 * An answer the gateway gave from its fallback (a `degraded` field in the body) is scored like
 * any other but flagged and counted: it measures the knowledge base, not the model.
 *
 * Failure: a 401/403/404 from the service stops the run (UPSTREAM_ERROR: nothing would succeed);
 * any other failed request is recorded on its sample, left out of the means, and counted. The
 * openai client retries connection errors, 429 and 5xx twice before that.
 */
import OpenAI from 'openai';
import { AppError } from '../shared/errors.js';
import { withChildSignal } from '../shared/net.js';
import type { EvalSample } from './conversations.js';
import { meanScores, scoreAnswer, type Scores } from './metrics.js';

export interface EvalModel {
  /** "微调前" or "微调后". */
  label: string;
  model: string;
}

export interface SampleResult {
  line: number;
  prompt: string;
  reference: string;
  /** Per evaluated model, in the order of `models`. */
  answers: Array<{ answer: string | null; error: string | null; degraded: boolean; scores: Scores | null }>;
}

export interface ModelSummary extends EvalModel {
  scores: Scores;
  scored: number;
  failed: number;
  /** Answers the gateway gave from its fallback instead of the model. */
  degraded: number;
  seconds: number;
}

export interface EvalResult {
  url: string;
  data: string;
  createdAt: string;
  maxTokens: number;
  models: ModelSummary[];
  samples: SampleResult[];
}

export interface EvaluateOptions {
  url: string;
  data: string;
  samples: EvalSample[];
  adapter?: string;
  compare?: string;
  apiKey?: string;
  maxTokens: number;
  concurrency: number;
  timeoutMs: number;
  onProgress?: (model: EvalModel, done: number, total: number) => void;
  signal?: AbortSignal;
}

export function createClient(url: string, apiKey: string | undefined, timeoutMs: number): OpenAI {
  return new OpenAI({
    baseURL: `${url.replace(/\/+$/, '')}/v1`,
    // The service may run without keys; the client insists on a non-empty string.
    apiKey: apiKey || 'none',
    timeout: timeoutMs,
    maxRetries: 2,
  });
}

function upstreamError(err: unknown, what: string): AppError {
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    const code = (err.error as { code?: unknown } | undefined)?.code;
    return new AppError('UPSTREAM_ERROR', `${what}: HTTP ${err.status}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`, { cause: err });
  }
  return new AppError('UPSTREAM_ERROR', `${what}: ${(err as Error).message}`, { cause: err });
}

/** Picks the evaluated model and the one it is compared with (see the module comment). */
export async function resolveModels(
  client: OpenAI,
  adapter: string | undefined,
  compare: string | undefined,
  signal?: AbortSignal,
): Promise<EvalModel[]> {
  if (compare !== undefined && adapter === undefined) {
    throw new AppError('INVALID_REQUEST', '--compare: needs --adapter (the comparison is between the adapter and another model)', { param: '--compare' });
  }
  type Listed = { id: string; parent?: string | null; root?: string | null };
  const listed: Listed[] = [];
  try {
    for await (const m of client.models.list({ signal })) listed.push(m as unknown as Listed);
  } catch (err) {
    signal?.throwIfAborted();
    throw upstreamError(err, `GET ${client.baseURL}/models`);
  }
  const names = listed.map((m) => m.id).join(', ') || 'none';
  if (adapter !== undefined && !listed.some((m) => m.id === adapter)) {
    throw new AppError('INVALID_REQUEST', `--adapter: the service has no model ${JSON.stringify(adapter)} (it lists ${names})`, { param: '--adapter' });
  }
  const parentOf = (m: Listed | undefined) => m?.parent ?? (m?.root && m.root !== m.id ? m.root : undefined);
  const base = parentOf(listed.find((m) => m.id === adapter)) ?? listed.find((m) => !parentOf(m) && m.id !== adapter)?.id;
  if (base === undefined && (adapter === undefined || compare === 'base')) {
    throw new AppError('UPSTREAM_ERROR', `GET ${client.baseURL}/models lists no base model (it lists ${names})`);
  }
  const target: EvalModel = { label: '微调后', model: adapter ?? base! };
  if (compare === undefined) return [target];
  return [{ label: '微调前', model: compare === 'base' ? base! : compare }, target];
}

/** Runs `task` over `items` with at most `limit` at a time, keeping result order. */
async function mapPool<T, R>(items: T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return results;
}

export async function evaluate(options: EvaluateOptions): Promise<EvalResult> {
  const client = createClient(options.url, options.apiKey, options.timeoutMs);
  const models = await resolveModels(client, options.adapter, options.compare, options.signal);
  const samples: SampleResult[] = options.samples.map((s) => ({
    line: s.line,
    prompt: s.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '',
    reference: s.reference,
    answers: [],
  }));
  const summaries: ModelSummary[] = [];
  for (const [mi, model] of models.entries()) {
    const started = performance.now();
    let done = 0;
    options.onProgress?.(model, 0, options.samples.length);
    await mapPool(options.samples, options.concurrency, async (sample, i) => {
      let answer: string | null = null;
      let error: string | null = null;
      let degraded = false;
      try {
        const completion = await withChildSignal(options.signal, (signal) =>
          client.chat.completions.create(
            { model: model.model, messages: sample.messages, temperature: 0, max_tokens: options.maxTokens, stream: false },
            { signal },
          ),
        );
        answer = completion.choices[0]?.message?.content ?? '';
        degraded = Boolean((completion as unknown as { degraded?: unknown }).degraded);
      } catch (err) {
        options.signal?.throwIfAborted();
        const e = upstreamError(err, `${model.model}, line ${sample.line}`);
        const status = err instanceof OpenAI.APIError ? err.status : undefined;
        if (status === 401 || status === 403 || status === 404) throw e;
        error = e.message;
      }
      samples[i]!.answers[mi] = { answer, error, degraded, scores: answer === null ? null : scoreAnswer(answer, sample.reference) };
      options.onProgress?.(model, ++done, options.samples.length);
    });
    const scored = samples.map((s) => s.answers[mi]!.scores).filter((s): s is Scores => s !== null);
    summaries.push({
      ...model,
      scores: meanScores(scored),
      scored: scored.length,
      failed: samples.length - scored.length,
      degraded: samples.filter((s) => s.answers[mi]!.degraded).length,
      seconds: (performance.now() - started) / 1000,
    });
  }
  return {
    url: options.url,
    data: options.data,
    createdAt: new Date().toISOString(),
    maxTokens: options.maxTokens,
    models: summaries,
    samples,
  };
}
