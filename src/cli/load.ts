/**
 * `npm run load -- [--url http://127.0.0.1:8080] [--duration 30] [--connections 8] [--api-key K]
 * [--stream] [--max-requests 100000] [--max-tokens 64] [--model chatglm3-6b]`
 *
 * A mixed legal-question workload (src/load/workload.ts) against a running gateway, driven by
 * autocannon. It runs until --duration seconds have passed or --max-requests requests were
 * sent, whichever comes first, and sends only to --url (loopback by default). Prints a table,
 * then one line of JSON. Exits 1 when any answer was wrong (a 5xx other than 503, a 4xx to a
 * valid request, a 2xx to an invalid one) or nothing was answered; 2 on bad flags.
 */
import { USAGE, parseLoadFlags, type LoadFlags } from '../load/flags.js';
import { formatTable } from '../load/report.js';
import { runLoad } from '../load/runner.js';

async function main(): Promise<void> {
  let flags: LoadFlags;
  try {
    flags = parseLoadFlags(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  console.error(`load: ${flags.url}, ${flags.duration} s or ${flags['max-requests']} requests, ${flags.connections} connections${flags.stream ? ', streaming' : ''}`);
  const summary = await runLoad(flags);
  console.log(formatTable(summary));
  console.log(JSON.stringify(summary));
  process.exit(summary.outcomes.wrong > 0 || summary.outcomes.ok + summary.outcomes.degraded === 0 ? 1 : 0);
}

await main();
