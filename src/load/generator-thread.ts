/**
 * The generator's worker thread: runs the stages the main thread asks for (generator.ts) and
 * posts progress every 250 ms and each stage's columns (their buffers transferred, not copied).
 */
import { getPriority, setPriority } from 'node:os';
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

/**
 * On Linux a thread has a nice value of its own: the generator asks for -10 for this thread
 * alone, so that other work on the machine (the service under test, with --local) delays its
 * sends less. Only where the system allows it (root or CAP_SYS_NICE); elsewhere it keeps the
 * priority it has, and the summary says which one it ran at.
 */
const WANTED_NICE = -10;
try {
  setPriority(0, WANTED_NICE);
} catch {
  // not allowed here
}
const threadNice = getPriority(0);

parentPort!.on('message', (msg: ToGenerator) => {
  runStage(msg.spec, (p) => parentPort!.postMessage({ type: 'progress', ...p } satisfies FromGenerator)).then(
    (result) => parentPort!.postMessage({ type: 'result', result: { ...result, threadNice } } satisfies FromGenerator, buffers(result)),
    (err: unknown) => parentPort!.postMessage({ type: 'error', message: (err as Error).message } satisfies FromGenerator),
  );
});
