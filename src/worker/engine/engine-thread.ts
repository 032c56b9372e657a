/**
 * The engine thread: owns the onnxruntime session and the KV rows, and runs the calls the main
 * thread posts one after another (`thread-protocol.ts`). onnxruntime-node 1.30 runs a session
 * synchronously on the calling thread, so running it here is what keeps the worker's event loop
 * free during a model run. Logits go back as transferred buffers (no copy).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Logger } from '../../shared/logging.js';
import { AppError } from '../../shared/errors.js';
import { loadAdapters, type AdapterSet } from '../adapters.js';
import type { EngineSequence } from './engine.js';
import { OnnxEngine, readManifest } from './onnx-engine.js';
import type { EngineCall, EngineReply, EngineThreadData } from './thread-protocol.js';

const port = parentPort!;
const data = workerData as EngineThreadData;
const post = (reply: EngineReply, transfer: ArrayBuffer[] = []) => port.postMessage(reply, transfer);

/** The engine logs through the main thread's logger. */
function relayLogger(): Logger {
  const log =
    (level: 'warn' | 'error') =>
    (fields: unknown, message?: string): void => {
      const f = typeof fields === 'object' && fields !== null ? (fields as Record<string, unknown>) : {};
      post({ type: 'log', level, message: message ?? String(fields), fields: f });
    };
  const quiet = () => {};
  return { debug: quiet, info: quiet, warn: log('warn'), error: log('error') } as unknown as Logger;
}

let engine: OnnxEngine;
let adapters: AdapterSet;
try {
  adapters = loadAdapters(readManifest(data.modelDir), data.adaptersDir);
  engine = await OnnxEngine.load({
    modelDir: data.modelDir,
    device: data.device,
    maxSequences: data.maxSequences,
    adapters,
    logger: relayLogger(),
    prefixCache: data.prefixCache,
  });
} catch (err) {
  post({ type: 'load-failed', code: err instanceof AppError ? err.code : undefined, message: (err as Error).message });
  process.exit(0);
}
const sequences = new Map<number, EngineSequence>();

function sequence(id: number): EngineSequence {
  const s = sequences.get(id);
  if (!s) throw new Error(`sequence ${id} is not open`);
  return s;
}

/** A buffer of its own for the logits, so that transferring it gives nothing else away. */
function transferable(logits: Float32Array): Float32Array {
  return logits.byteOffset === 0 && logits.byteLength === logits.buffer.byteLength ? logits : logits.slice();
}

async function handle(msg: EngineCall): Promise<void> {
  switch (msg.op) {
    case 'open': {
      const adapter = msg.adapter === null ? null : (adapters.byName.get(msg.adapter) ?? null);
      sequences.set(msg.seq, engine.open(adapter));
      return;
    }
    case 'close': {
      const s = sequences.get(msg.seq);
      if (s) engine.close(s);
      sequences.delete(msg.seq);
      return;
    }
    case 'dispose':
      await engine.dispose();
      post({ type: 'done', call: msg.call, runStats: engine.runStats, prefixCache: engine.prefixCacheStats() });
      port.close();
      return;
    case 'reuse': {
      try {
        const reused = await engine.reusePrefix(sequence(msg.seq), msg.ids);
        post({ type: 'done', call: msg.call, reused, runStats: engine.runStats, prefixCache: engine.prefixCacheStats() });
      } catch (err) {
        post({ type: 'failed', call: msg.call, message: (err as Error).message });
      }
      return;
    }
    case 'prefill':
    case 'decode': {
      try {
        const logits =
          msg.op === 'prefill' ? await engine.prefill(sequence(msg.seq), msg.ids) : await engine.decode(msg.seqs.map(sequence), msg.ids);
        const own = transferable(logits);
        post({ type: 'done', call: msg.call, logits: own, runStats: engine.runStats, prefixCache: engine.prefixCacheStats() }, [
          own.buffer as ArrayBuffer,
        ]);
      } catch (err) {
        post({ type: 'failed', call: msg.call, message: (err as Error).message });
      }
      return;
    }
  }
}

// One call at a time, in the order posted: the engine's state is only touched by one call at once.
let chain = Promise.resolve();
port.on('message', (msg: EngineCall) => {
  chain = chain.then(() => handle(msg)).catch((err: unknown) => post({ type: 'log', level: 'error', message: (err as Error).message }));
});
post({ type: 'ready', info: engine.info });
