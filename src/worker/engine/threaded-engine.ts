/**
 * The onnxruntime engine run in a worker thread (`engine-thread.ts`), seen from the main thread
 * as an InferenceEngine. onnxruntime-node 1.30 runs `session.run` synchronously on the calling
 * thread (its `run` only defers the call with setImmediate), so in the main thread every model
 * run would block health checks, disconnects and the first bytes of new streams for its whole
 * length. Here the main thread only posts calls and awaits their answers.
 *
 * The main thread keeps a mirror of each sequence (its length, its adapter) so that `open`,
 * `close` and `kvTokensInUse` stay synchronous: `open` and `close` are posted and take effect in
 * the thread before any later call, since the thread runs calls in the order they were posted.
 * If the thread dies, every pending and later call fails with the reason, and the scheduler ends
 * the sequences concerned with an error event.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../shared/logging.js';
import { AppError, type ErrorCode } from '../../shared/errors.js';
import type { EngineAdapter, EngineInfo, EngineSequence, InferenceEngine, PrefixCacheStats } from './engine.js';
import type { RunStats } from './onnx-engine.js';
import type { EngineCall, EngineReply, EngineThreadData } from './thread-protocol.js';

export type ThreadedEngineOptions = EngineThreadData & { logger?: Logger | undefined };

class ThreadedSequence implements EngineSequence {
  length = 0;
  /** Prompt tokens of a prefill posted and not answered yet: their cache is being filled. */
  filling = 0;
  constructor(
    readonly id: number,
    readonly adapter: EngineAdapter | null,
  ) {}
}

interface Pending {
  resolve: (reply: Extract<EngineReply, { type: 'done' }>) => void;
  reject: (err: Error) => void;
}

export class ThreadedEngine implements InferenceEngine {
  readonly runStats: RunStats = { prefillRuns: 0, prefillMs: 0, decodeRuns: 0, decodeMs: 0 };
  private readonly open_ = new Set<ThreadedSequence>();
  private readonly pending = new Map<number, Pending>();
  private nextSeq = 0;
  private nextCall = 0;
  private failure: Error | null = null;
  private cacheStats: PrefixCacheStats = { blocks: 0, bytes: 0, capacityBytes: 0, evictions: 0 };

  private constructor(
    private readonly worker: Worker,
    readonly info: EngineInfo,
    private readonly logger: Logger | undefined,
  ) {
    worker.on('message', (reply: EngineReply) => this.onReply(reply));
    worker.on('error', (err) => this.fail(new Error(`the engine thread failed: ${err.message}`)));
    worker.on('exit', (code) => this.fail(new Error(`the engine thread stopped (exit code ${code})`)));
  }

  /** Starts the thread and waits for its model to load; load errors keep their code (INVALID_MODEL_FILE, ...). */
  static load(options: ThreadedEngineOptions): Promise<ThreadedEngine> {
    const { logger, ...data } = options;
    const worker = new Worker(new URL('./engine-thread.js', import.meta.url), { workerData: data satisfies EngineThreadData });
    return new Promise((resolve, reject) => {
      const onMessage = (reply: EngineReply) => {
        if (reply.type === 'log') ThreadedEngine.log(logger, reply);
        else if (reply.type === 'load-failed') {
          done();
          reject(reply.code ? new AppError(reply.code as ErrorCode, reply.message) : new Error(reply.message));
        } else if (reply.type === 'ready') {
          done();
          resolve(new ThreadedEngine(worker, reply.info, logger));
        }
      };
      const onError = (err: Error) => {
        done();
        reject(err);
      };
      const onExit = (code: number) => {
        done();
        reject(new Error(`the engine thread stopped while loading (exit code ${code})`));
      };
      const done = () => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
  }

  private static log(logger: Logger | undefined, reply: Extract<EngineReply, { type: 'log' }>): void {
    logger?.[reply.level](reply.fields ?? {}, reply.message);
  }

  private onReply(reply: EngineReply): void {
    if (reply.type === 'log') return ThreadedEngine.log(this.logger, reply);
    if (reply.type !== 'done' && reply.type !== 'failed') return;
    const p = this.pending.get(reply.call);
    if (!p) return;
    this.pending.delete(reply.call);
    if (reply.type === 'failed') return p.reject(new Error(reply.message));
    Object.assign(this.runStats, reply.runStats);
    this.cacheStats = reply.prefixCache;
    p.resolve(reply);
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    if (!this.disposing) this.logger?.error({ err: err.message }, 'the engine thread is gone; generations fail until the worker restarts');
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private disposing = false;

  private post(msg: EngineCall): void {
    this.worker.postMessage(msg);
  }

  private call(make: (call: number) => EngineCall): Promise<Extract<EngineReply, { type: 'done' }>> {
    if (this.failure) return Promise.reject(this.failure);
    const call = this.nextCall++;
    return new Promise((resolve, reject) => {
      this.pending.set(call, { resolve, reject });
      this.post(make(call));
    });
  }

  private check(seq: EngineSequence): ThreadedSequence {
    const s = seq as ThreadedSequence;
    if (!this.open_.has(s)) throw new Error('the sequence is not open');
    return s;
  }

  open(adapter: EngineAdapter | null): EngineSequence {
    if (this.failure) throw this.failure;
    if (this.open_.size >= this.info.maxSequences) throw new Error(`all ${this.info.maxSequences} KV rows are in use`);
    const seq = new ThreadedSequence(this.nextSeq++, adapter);
    this.open_.add(seq);
    this.post({ op: 'open', seq: seq.id, adapter: adapter?.name ?? null });
    return seq;
  }

  close(seq: EngineSequence): void {
    const s = seq as ThreadedSequence;
    if (!this.open_.delete(s)) return;
    s.length = 0;
    s.filling = 0;
    if (!this.failure) this.post({ op: 'close', seq: s.id });
  }

  kvTokensInUse(): number {
    let n = 0;
    for (const s of this.open_) n += s.length + s.filling;
    return n;
  }

  async prefill(seq: EngineSequence, ids: readonly number[]): Promise<Float32Array> {
    const s = this.check(seq);
    s.filling = ids.length;
    try {
      const { logits } = await this.call((call) => ({ op: 'prefill', call, seq: s.id, ids: [...ids] }));
      s.length += ids.length;
      return logits!;
    } finally {
      s.filling = 0;
    }
  }

  async decode(seqs: readonly EngineSequence[], ids: readonly number[]): Promise<Float32Array> {
    const list = seqs.map((q) => this.check(q));
    const { logits } = await this.call((call) => ({ op: 'decode', call, seqs: list.map((s) => s.id), ids: [...ids] }));
    for (const s of list) s.length++;
    return logits!;
  }

  async reusePrefix(seq: EngineSequence, promptIds: readonly number[]): Promise<number> {
    const s = this.check(seq);
    const { reused = 0 } = await this.call((call) => ({ op: 'reuse', call, seq: s.id, ids: [...promptIds] }));
    s.length += reused;
    return reused;
  }

  prefixCacheStats(): PrefixCacheStats {
    return this.cacheStats;
  }

  async dispose(): Promise<void> {
    if (this.failure) return;
    this.disposing = true;
    this.open_.clear();
    await this.call((call) => ({ op: 'dispose', call })).catch(() => undefined);
    await this.worker.terminate();
  }
}
