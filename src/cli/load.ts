/**
 * `npm run load -- [options]` (README, "Load tests"; `--help` lists every flag with its default)
 *
 * The legal-question mix (src/load/workload.ts) or a finetune_demo dataset against a gateway:
 * closed loop (--connections) or open loop (--rate, --burstiness, --sweep), every request
 * accounted for (answered, fallback, rate_limited, refused, failed, lost), latencies, throughput
 * and goodput. `--local` starts a private stack (Redis, workers, gateway) and stops it at the
 * end, also on failure and Ctrl-C; `--chaos` applies faults to it. Prints a table, then one line
 * of JSON; `--json FILE` and `--report FILE.html` write them to files. Sends only to --url
 * (loopback by default) or the local stack. Exit codes: 0; 1 when a request was lost, an answer
 * was wrong, or nothing was answered; 2 on bad flags or a bad --dataset; 130 on Ctrl-C.
 */
import { writeFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { readEvalSamples } from '../data/conversations.js';
import { AppError } from '../shared/errors.js';
import { USAGE, parseLoadFlags, type LoadFlags } from '../load/flags.js';
import { renderHtmlReport } from '../load/html-report.js';
import { startLocalStack, type LocalStack } from '../load/local-stack.js';
import { formatTable } from '../load/report.js';
import { runLoad } from '../load/runner.js';
import type { Turn } from '../load/workload.js';

function fail(message: string, code: number, usage = false): never {
  process.stderr.write(`${message}\n${usage ? `${USAGE}\n` : ''}`);
  process.exit(code);
}

async function readPrompts(path: string): Promise<Turn[][]> {
  let skipped = 0;
  try {
    const samples = await readEvalSamples(path, { onSkip: () => skipped++ });
    const prompts = samples.map((s) => s.messages as Turn[]).filter((m) => m.at(-1)?.role === 'user');
    if (prompts.length === 0) throw new AppError('INVALID_DATA', `${path}: no conversation ends its prompt with a user turn`);
    if (skipped > 0) process.stderr.write(`load: --dataset ${path}: ${skipped} lines skipped (not finetune_demo conversations)\n`);
    return prompts;
  } catch (err) {
    if (err instanceof AppError) fail(`--dataset ${err.message}`, 2);
    throw err;
  }
}

function expectedRequests(f: LoadFlags): number {
  if (f.arrivals.kind === 'closed') return f.maxRequests;
  return Math.min(f.maxRequests, Math.ceil(f.arrivals.rates.reduce((a, r) => a + r * f.durationS, 0)));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let flags: LoadFlags;
  try {
    flags = parseLoadFlags(argv);
  } catch (err) {
    fail((err as Error).message, 2, true);
  }
  const prompts = flags.dataset ? await readPrompts(flags.dataset) : undefined;

  const controller = new AbortController();
  let stack: LocalStack | null = null;
  let stopLocal: (() => Promise<void>) | null = null;
  let stopping: Promise<void> | null = null;
  const stopStack = () => (stopping ??= stopLocal ? stopLocal() : Promise.resolve());
  const onSignal = (sig: NodeJS.Signals) => {
    controller.abort(new Error(`interrupted by ${sig}`));
    void stopStack().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const tty = process.stdout.isTTY && process.stderr.isTTY;
  let bar: SingleBar | null = null;
  try {
    if (flags.local) {
      process.stderr.write(`load: starting a local stack (${flags.local.workers} ${flags.local.engine} worker(s))\n`);
      stack = await startLocalStack({
        workers: flags.local.workers,
        engine: flags.local.engine,
        nice: flags.local.nice,
        onStop: (stop) => (stopLocal = stop),
        log: (l) => process.stderr.write(`load: ${l}\n`),
      });
    }
    const url = stack ? stack.url : flags.url;
    const mode = flags.arrivals.kind === 'open' ? `${flags.arrivals.rates.join(', ')} requests/s` : `${flags.arrivals.connections} connections`;
    process.stderr.write(`load: ${url}, ${mode}, ${flags.durationS} s per stage, at most ${flags.maxRequests} requests${flags.stream ? ', streaming' : ''}\n`);
    if (tty) {
      bar = new SingleBar({ format: 'load [{bar}] {percentage}% | {value}/{total} sent | {done} done, {failed} failed | {duration}s', hideCursor: true, clearOnComplete: true });
      bar.start(expectedRequests(flags), 0, { done: 0, failed: 0 });
    }
    // The local workers report their own model name; the chat/completions share must ask for it.
    if (stack) flags = { ...flags, model: stack.model };
    const summary = await runLoad(flags, {
      url,
      apiKey: stack ? stack.apiKey : flags.apiKey,
      stack,
      prompts,
      signal: controller.signal,
      ...(bar ? { onProgress: (p: { sent: number; done: number; failed: number }) => bar!.update(p.sent, { done: p.done, failed: p.failed }) } : {}),
    });
    bar?.stop();
    bar = null;
    if (flags.json) writeFileSync(flags.json, `${JSON.stringify(summary, null, 2)}\n`);
    if (flags.report) writeFileSync(flags.report, renderHtmlReport(summary));
    console.log(formatTable(summary));
    console.log(JSON.stringify(summary));
    if (summary.requests.lost > 0) process.stderr.write(`load: ${summary.requests.lost} requests had no outcome when the run ended (lost)\n`);
    const answered = summary.requests.answered + summary.requests.fallback;
    process.exitCode = summary.requests.lost > 0 || summary.wrong > 0 || answered === 0 ? 1 : 0;
  } catch (err) {
    bar?.stop();
    if (controller.signal.aborted) return;
    process.stderr.write(`load: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (!controller.signal.aborted) await stopStack();
  }
}

await main();
