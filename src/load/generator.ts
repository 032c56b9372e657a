/**
 * The request generator: sends one stage of the load and times every request. It runs in a
 * worker thread of its own (generator-thread.ts), so the main thread's progress bar, chaos
 * events and reports never delay a send.
 *
 * Open loop: every send time is fixed before the stage starts (arrivals.ts), as an absolute
 * deadline on performance.now(). The scheduler sleeps with setTimeout until about a millisecond
 * before the next deadline, then yields with setImmediate (I/O still runs) until it is due, and
 * sends every request whose deadline has passed. How late each send was is its schedule lag,
 * reported so that a slow generator cannot pass for a slow service. Closed loop: N loops, each
 * sending its next request when its last one ended.
 *
 * Requests go through one keep-alive undici Pool with `dispatch` and a handler object per
 * request: no promise, stream or string per chunk. A streamed body is read by counting
 * `data: ` lines in each chunk's bytes; only the last chunks are kept, to read the usage and the
 * `[DONE]` mark at the end. Results are columns of typed arrays, handed to the main thread
 * without copying.
 *
 * The stage ends when its time is up or its request budget is spent; requests still in flight
 * then have `drainMs` to finish. Any left after that are aborted and counted `lost`.
 */
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';
import { arrivalTimes, seededRandom, type Random } from './arrivals.js';
import { KIND_INDEX, OUTCOMES, buildRequest, classify, pickKind, type LoadRequest, type WorkloadOptions } from './workload.js';

export type StageArrivals = { kind: 'open'; rate: number; burstiness: number } | { kind: 'closed'; connections: number };

export interface StageSpec {
  url: string;
  arrivals: StageArrivals;
  durationMs: number;
  maxRequests: number;
  drainMs: number;
  timeoutMs: number;
  seed: number;
  apiKey: string | undefined;
  workload: WorkloadOptions;
  /** Epoch ms (timeOrigin + now) that every time in the result is counted from. */
  runStartEpochMs: number;
}

/** One row per request sent; times in ms from the start of the run. */
export interface StageColumns {
  n: number;
  kind: Uint8Array;
  scheduledMs: Float64Array;
  sentMs: Float64Array;
  /** First body byte of a streamed answer; NaN when not streamed or none came. */
  ttftMs: Float64Array;
  /** Until the last byte, the error, or the end of the run (lost). */
  e2eMs: Float64Array;
  outputTokens: Uint32Array;
  /** Largest gap between two chunks of a streamed answer; NaN when fewer than two chunks. */
  itlMaxMs: Float64Array;
  /** HTTP status; 0: transport error or none (lost). */
  status: Uint16Array;
  /** Index in OUTCOMES; LOST when no outcome came before the end of the run. */
  outcome: Uint8Array;
  wrong: Uint8Array;
  stream: Uint8Array;
}

export interface StageResult {
  columns: StageColumns;
  /** Gaps between the chunks of streamed worker answers, ms. */
  itlMs: Float64Array;
  startMs: number;
  /** When the last request was sent (or the stage time was up), ms from the start of the run. */
  sendEndMs: number;
  endMs: number;
  /** Transport error messages by count (the first few kinds). */
  errors: Record<string, number>;
  /** The nice value the generator's thread ran at (generator-thread.ts); absent when run in place. */
  threadNice?: number;
}

export const LOST = 255;

export interface Progress {
  sent: number;
  done: number;
  failed: number;
}

class Growable {
  constructor(public a: Float64Array, public n = 0) {}
  push(v: number): void {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
}

function makeColumns(capacity: number): StageColumns {
  return {
    n: 0,
    kind: new Uint8Array(capacity),
    scheduledMs: new Float64Array(capacity),
    sentMs: new Float64Array(capacity),
    ttftMs: new Float64Array(capacity).fill(Number.NaN),
    e2eMs: new Float64Array(capacity),
    outputTokens: new Uint32Array(capacity),
    itlMaxMs: new Float64Array(capacity).fill(Number.NaN),
    status: new Uint16Array(capacity),
    outcome: new Uint8Array(capacity).fill(LOST),
    wrong: new Uint8Array(capacity),
    stream: new Uint8Array(capacity),
  };
}

function growColumns(c: StageColumns): StageColumns {
  const cap = c.kind.length * 2;
  const g = makeColumns(cap);
  g.n = c.n;
  for (const k of Object.keys(c) as (keyof StageColumns)[]) if (k !== 'n') (g[k] as Float64Array).set(c[k] as Float64Array);
  return g;
}

/** Trims the columns to their length (copies: the buffers are transferred whole). */
function trimColumns(c: StageColumns): StageColumns {
  const t = { n: c.n } as StageColumns;
  for (const k of Object.keys(c) as (keyof StageColumns)[]) if (k !== 'n') (t as unknown as Record<string, unknown>)[k] = (c[k] as Float64Array).slice(0, c.n);
  return t;
}

const DATA = Buffer.from('data: ');
const TOKENS_RE = /"completion_tokens":(\d+)/g;

function countData(chunk: Buffer): number {
  let n = 0;
  for (let i = chunk.indexOf(DATA); i !== -1; i = chunk.indexOf(DATA, i + DATA.length)) n++;
  return n;
}

function lastTokens(text: string): number {
  let v = 0;
  TOKENS_RE.lastIndex = 0;
  for (let m = TOKENS_RE.exec(text); m; m = TOKENS_RE.exec(text)) v = Number(m[1]);
  return v;
}

export async function runStage(spec: StageSpec, onProgress: (p: Progress) => void): Promise<StageResult> {
  const origin = spec.runStartEpochMs - performance.timeOrigin;
  const now = () => performance.now() - origin;
  const random: Random = seededRandom(spec.seed);
  const pool = new Pool(spec.url, { pipelining: 1, keepAliveTimeout: 30_000, connect: { timeout: 10_000 } });
  const headers: string[] = ['content-type', 'application/json', 'accept', 'application/json, text/event-stream'];
  if (spec.apiKey) headers.push('authorization', `Bearer ${spec.apiKey}`);

  let cols = makeColumns(spec.arrivals.kind === 'open' ? Math.min(spec.maxRequests, Math.ceil((spec.arrivals.rate * spec.durationMs) / 1000) * 2 + 64) : 1024);
  const itl = new Growable(new Float64Array(4096));
  const errors: Record<string, number> = {};
  const inFlight = new Set<{ abort(): void }>();
  let ending = false;
  let done = 0;
  let failed = 0;
  const failedIndex = OUTCOMES.indexOf('failed');
  const settled: Array<() => void> = [];

  // Open loop: the whole schedule and every body are made before the clock starts, so that no
  // JSON work falls between two deadlines.
  let times: Float64Array | null = null;
  let requests: LoadRequest[] = [];
  if (spec.arrivals.kind === 'open') {
    times = arrivalTimes(spec.arrivals.rate, spec.arrivals.burstiness, spec.durationMs, spec.maxRequests, random);
    requests = new Array<LoadRequest>(times.length);
    for (let i = 0; i < times.length; i++) requests[i] = buildRequest(pickKind(() => random.next()), spec.workload, () => random.next());
    while (cols.kind.length < times.length) cols = growColumns(cols);
  }
  const startMs = now();
  const endOfSends = startMs + spec.durationMs;

  /** Sends request `i` of the columns; calls `onEnd` once it has an outcome. */
  const send = (i: number, r: LoadRequest, onEnd?: () => void): void => {
    const sent = now();
    cols.sentMs[i] = sent;
    cols.kind[i] = KIND_INDEX[r.kind];
    cols.stream[i] = r.stream ? 1 : 0;
    let status = 0;
    let degraded = false;
    let streamed = false;
    let firstAt = 0;
    let lastAt = 0;
    let events = 0;
    let gapMax = Number.NaN;
    let body = '';
    let tail: Buffer | null = null;
    let prev: Buffer | null = null;
    let controller: Dispatcher.DispatchController | null = null;
    let finished = false;
    const itlStart = itl.n;
    const entry = { abort: () => controller?.abort(new Error('the run ended')) };
    inFlight.add(entry);
    const finish = (brokenOrError: Error | null) => {
      if (finished) return;
      finished = true;
      inFlight.delete(entry);
      const end = now();
      if (ending && brokenOrError) {
        // Cut by the end of the run: no outcome, so it stays `lost`.
        itl.n = itlStart;
        cols.e2eMs[i] = end - sent;
        cols.status[i] = status;
        for (const f of settled.splice(0)) f();
        return;
      }
      if (brokenOrError && status === 0) {
        const key = brokenOrError.message.slice(0, 80);
        errors[key] = (errors[key] ?? 0) + 1;
      }
      let tokens = 0;
      let broken = false;
      if (streamed) {
        const text = (prev ? prev.toString('latin1') : '') + (tail ? tail.toString('latin1') : '');
        broken = brokenOrError !== null || !text.includes('data: [DONE]');
        tokens = lastTokens(text);
        // An OpenAI stream without usage (not asked for) or a broken one: one token per delta event.
        if (tokens === 0 && !degraded) tokens = Math.max(0, events - 1);
      } else if (status >= 200 && status < 300) {
        broken = brokenOrError !== null;
        tokens = lastTokens(body);
      }
      const c = classify(r, status, degraded, broken);
      cols.outcome[i] = OUTCOMES.indexOf(c.outcome);
      cols.wrong[i] = c.wrong ? 1 : 0;
      cols.status[i] = status;
      cols.e2eMs[i] = end - sent;
      cols.outputTokens[i] = tokens;
      if (streamed && firstAt > 0) cols.ttftMs[i] = firstAt - sent;
      cols.itlMaxMs[i] = gapMax;
      // Chunk gaps describe the worker's decoding only when it answered in full.
      if (c.outcome !== 'answered') itl.n = itlStart;
      done++;
      if (cols.outcome[i] === failedIndex) failed++;
      onEnd?.();
      if (inFlight.size === 0) for (const f of settled.splice(0)) f();
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
      },
      onResponseStart(_c, statusCode, resHeaders) {
        status = statusCode;
        degraded = resHeaders['x-degraded'] !== undefined;
        const type = resHeaders['content-type'];
        streamed = typeof type === 'string' && type.startsWith('text/event-stream');
      },
      onResponseData(_c, chunk) {
        if (streamed) {
          const t = now();
          if (firstAt === 0) firstAt = t;
          else if (!degraded) {
            const gap = t - lastAt;
            itl.push(gap);
            if (!(gap <= gapMax)) gapMax = gap;
          }
          lastAt = t;
          events += countData(chunk);
          prev = tail;
          tail = chunk;
        } else if (body.length < 1 << 20) {
          body += chunk.toString('utf8');
        }
      },
      onResponseEnd() {
        finish(null);
      },
      onResponseError(_c, err) {
        finish(err);
      },
    };
    try {
      pool.dispatch(
        { origin: spec.url, path: r.path, method: r.method, headers, body: r.body, headersTimeout: spec.timeoutMs, bodyTimeout: spec.timeoutMs },
        handler,
      );
    } catch (err) {
      finish(err as Error);
    }
  };

  const progress = setInterval(() => onProgress({ sent: cols.n, done, failed }), 250);
  let sendEndMs = startMs;
  try {
    if (times) {
      const base = startMs;
      for (let i = 0; i < times.length; i++) cols.scheduledMs[i] = base + times[i]!;
      let i = 0;
      while (i < times.length) {
        const wait = cols.scheduledMs[i]! - now();
        if (wait > 1.5) {
          await new Promise((r) => setTimeout(r, wait - 1));
          continue;
        }
        if (wait > 0) {
          await new Promise((r) => setImmediate(r));
          continue;
        }
        // Everything due leaves now, oldest first.
        const t = now();
        while (i < times.length && cols.scheduledMs[i]! <= t) {
          cols.n = i + 1;
          send(i, requests[i]!);
          i++;
        }
      }
      sendEndMs = now();
    } else if (spec.arrivals.kind === 'closed') {
      const loops = spec.arrivals.connections;
      await new Promise<void>((resolveAll) => {
        // A loop whose request hangs never asks for its next one: the stage's time ends the wait.
        const timer = setTimeout(resolveAll, Math.max(0, endOfSends - now()));
        let running = loops;
        const next = () => {
          if (now() >= endOfSends || cols.n >= spec.maxRequests) {
            if (--running === 0) {
              clearTimeout(timer);
              resolveAll();
            }
            return;
          }
          if (cols.n === cols.kind.length) cols = growColumns(cols);
          const i = cols.n++;
          cols.scheduledMs[i] = now();
          send(i, buildRequest(pickKind(() => random.next()), spec.workload, () => random.next()), () => setImmediate(next));
        };
        for (let k = 0; k < loops; k++) next();
      });
      sendEndMs = now();
    }
    if (inFlight.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, spec.drainMs);
        settled.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    ending = true;
    for (const e of [...inFlight]) e.abort();
  } finally {
    clearInterval(progress);
    onProgress({ sent: cols.n, done, failed });
    await pool.destroy().catch(() => {});
  }
  return { columns: trimColumns(cols), itlMs: itl.a.slice(0, itl.n), startMs, sendEndMs, endMs: now(), errors };
}


