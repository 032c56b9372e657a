/**
 * One export in a process of its own, for `bench/export.ts`: runs exportModel with the options
 * given as JSON in argv[2] and prints {ms, maxRssMB, dataBytes} as one JSON line. The peak
 * resident set comes from getrusage, so it covers the whole process lifetime.
 */
import { exportModel, type ExportOptions } from '../src/model/export-model.js';

const options = JSON.parse(process.argv[2] ?? '{}') as ExportOptions;
const started = performance.now();
const result = await exportModel(options);
const ms = performance.now() - started;
process.stdout.write(
  `${JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024, dataBytes: result.dataBytes })}\n`,
);
