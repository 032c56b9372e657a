/**
 * Messages between the worker's main thread (`threaded-engine.ts`) and the engine thread
 * (`engine-thread.ts`). Calls carry a number; the thread answers each with that number, in order.
 */
import type { DeviceOptions, RunStats } from './onnx-engine.js';
import type { EngineInfo, PrefixCacheStats } from './engine.js';

export interface EngineThreadData {
  modelDir: string;
  adaptersDir: string;
  device: DeviceOptions;
  maxSequences: number;
  prefixCache?: { maxBytes: number; blockTokens: number } | undefined;
}

export type EngineCall =
  | { op: 'open'; seq: number; adapter: string | null }
  | { op: 'close'; seq: number }
  | { op: 'prefill'; call: number; seq: number; ids: number[] }
  | { op: 'decode'; call: number; seqs: number[]; ids: number[] }
  | { op: 'reuse'; call: number; seq: number; ids: number[] }
  | { op: 'dispose'; call: number };

export type EngineReply =
  | { type: 'ready'; info: EngineInfo }
  | { type: 'load-failed'; code: string | undefined; message: string }
  | { type: 'log'; level: 'warn' | 'error'; message: string; fields?: Record<string, unknown> }
  | { type: 'done'; call: number; logits?: Float32Array; reused?: number; runStats: RunStats; prefixCache: PrefixCacheStats }
  | { type: 'failed'; call: number; message: string };
