/**
 * What the scheduler needs from a model runtime. The onnxruntime implementation is
 * `onnx-engine.ts` (run in a worker thread by `threaded-engine.ts`), the simulated one `sim-engine.ts`; the scheduler only sees this interface, which keeps it testable on its own.
 *
 * A sequence owns one row of the engine's KV cache from `open` to `close`. `prefill` appends
 * prompt tokens to one sequence's cache (several calls for a long prompt); `decode` appends one
 * token to each of several sequences in one step. Both return logits that stay valid only until
 * the next engine call: the engine reuses its buffers.
 */
import type { AdapterInfo } from '../../protocol/schemas.js';

export interface EngineInfo {
  /** The served model's name (manifest `name`). */
  model: string;
  /** Width of a logits row: the model's padded vocabulary. */
  vocabSize: number;
  /** Most tokens one sequence may hold (prompt + generated). */
  contextLength: number;
  /** Most sequences in the KV cache at once. */
  maxSequences: number;
  /** What onnxruntime actually runs on, e.g. `cpu` or `cuda:0`. */
  executionProvider: string;
}

/** A LoRA adapter the engine can apply per sequence; `null` is the base model. */
export interface EngineAdapter {
  readonly name: string;
  readonly info: AdapterInfo;
}

export interface EngineSequence {
  /** Tokens in this sequence's cache. */
  readonly length: number;
  readonly adapter: EngineAdapter | null;
}

export interface PrefixCacheStats {
  blocks: number;
  bytes: number;
  capacityBytes: number;
  /** Blocks evicted since start. */
  evictions: number;
}

export interface InferenceEngine {
  readonly info: EngineInfo;
  /** Reserves a cache row for a new sequence; throws when none is free. */
  open(adapter: EngineAdapter | null): EngineSequence;
  /** Appends `ids` to the sequence; the logits of its last position (vocabSize floats). */
  prefill(seq: EngineSequence, ids: readonly number[]): Promise<Float32Array>;
  /** Appends `ids[i]` to `seqs[i]` in one step; logits [seqs.length × vocabSize]. */
  decode(seqs: readonly EngineSequence[], ids: readonly number[]): Promise<Float32Array>;
  /**
   * Fills an empty sequence's cache with the longest cached prefix of `promptIds`, always leaving
   * at least one token to prefill; the number of tokens now in it (0 without a prefix cache).
   */
  reusePrefix(seq: EngineSequence, promptIds: readonly number[]): Promise<number>;
  /** The prefix cache's size now (zeros without one). */
  prefixCacheStats(): PrefixCacheStats;
  /** Frees the sequence's row and its KV memory at once. */
  close(seq: EngineSequence): void;
  /**
   * When the engine can prefill this sequence (a `performance.now()` time); absent or past: now.
   * A simulated engine's time to first token: the scheduler runs the others meanwhile instead of
   * holding its loop in a wait.
   */
  readyAt?(seq: EngineSequence): number;
  /** Tokens held in the KV cache by all open sequences. */
  kvTokensInUse(): number;
  dispose(): Promise<void>;
}
