/**
 * The generator's worker thread: runs the stages the main thread asks for (generator.ts) and
 * posts progress every 250 ms and each stage's columns (their buffers transferred, not copied).
 */
import { parentPort } from 'node:worker_threads';
import { runStage, type StageResult, type StageSpec } from './generator.js';

export type ToGenerator = { type: 'stage'; spec: StageSpec };
export type FromGenerator =
  | { type: 'progress'; sent: number; done: number; failed: number }
  | { type: 'result'; result: StageResult }
  | { type: 'error'; message: string };

function buffers(r: StageResult): ArrayBuffer[] {
  const out = [r.itlMs.buffer as ArrayBuffer];
  for (const [k, v] of Object.entries(r.columns)) if (k !== 'n') out.push((v as Float64Array).buffer as ArrayBuffer);
  return out;
}

parentPort!.on('message', (msg: ToGenerator) => {
  runStage(msg.spec, (p) => parentPort!.postMessage({ type: 'progress', ...p } satisfies FromGenerator)).then(
    (result) => parentPort!.postMessage({ type: 'result', result } satisfies FromGenerator, buffers(result)),
    (err: unknown) => parentPort!.postMessage({ type: 'error', message: (err as Error).message } satisfies FromGenerator),
  );
});
