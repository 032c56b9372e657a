/**
 * `npm run bench:prepare [-- --mb 200]`: rows per second and peak memory of prepare-data on a
 * generated lawzhidao CSV (default 200 MB, in a temporary folder that is deleted afterwards).
 *
 * Cases, run one after another as separate processes on the same rows, so the ratios compare
 * like with like:
 *   read (UTF-8)          the CSV reader alone (decode + parse + row checks): the floor
 *   prepare-data (UTF-8)  the whole command: filter, dedup, score, write, split
 *   prepare-data (GBK)    the same rows encoded in GBK
 * Peak memory is each process's maximum resident set size (getrusage), reported on exit.
 * Prints a table, then the same numbers as JSON.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gbkEncode } from '../test/helpers/gbk.js';
import { CLI_DIR, PROJECT_ROOT } from '../test/helpers/paths.js';
import { readLawzhidaoCsv } from '../src/data/lawzhidao-csv.js';

const { values } = parseArgs({ options: { mb: { type: 'string', default: '200' } } });
const targetBytes = Number(values.mb) * 1e6;
if (!(targetBytes > 0)) {
  console.error('--mb must be a positive number');
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'bench-prepare-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

/** Rows from the sample CSV, each made unique with a counter so that dedup keeps them. */
async function generate(): Promise<{ utf8: string; gbk: string; rows: number }> {
  const base: Array<[string, string, string]> = [];
  for await (const r of readLawzhidaoCsv(join(PROJECT_ROOT, 'data/sample/lawzhidao-sample.csv'))) {
    if (r.reply) base.push([r.title, r.question, r.reply]);
  }
  const utf8 = join(dir, 'big-utf8.csv');
  const gbk = join(dir, 'big-gbk.csv');
  const a = createWriteStream(utf8);
  const b = createWriteStream(gbk);
  const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
  const header = 'title,question,reply,is_best\n';
  a.write(header);
  b.write(header);
  let bytes = header.length;
  let rows = 0;
  while (bytes < targetBytes) {
    const [title, question, reply] = base[rows % base.length]!;
    const line = `${q(`${title}（${rows}）`)},${q(question)},${q(reply)},${rows % 3 === 0 ? 1 : 0}\n`;
    const buf = Buffer.from(line, 'utf8');
    bytes += buf.length;
    rows++;
    const okA = a.write(buf);
    const okB = b.write(gbkEncode(line));
    if (!okA) await once(a, 'drain');
    if (!okB) await once(b, 'drain');
  }
  a.end();
  b.end();
  await Promise.all([once(a, 'close'), once(b, 'close')]);
  return { utf8, gbk, rows };
}

// Loaded into each measured process: reports its peak RSS (KiB) on stderr as it exits.
const PEAK_HOOK = `data:text/javascript,process.on('exit',()=>process.stderr.write('\\nPEAK_RSS_KB='+process.resourceUsage().maxRSS+'\\n'))`;

async function measure(args: string[]): Promise<{ seconds: number; peakMB: number; stdout: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', PEAK_HOOK, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  const seconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}: ${stderr}`);
  const peak = /PEAK_RSS_KB=(\d+)/.exec(stderr);
  return { seconds, peakMB: peak ? Number(peak[1]) / 1024 : NaN, stdout };
}

const READ_ONLY = `import { readLawzhidaoCsv } from ${JSON.stringify(join(PROJECT_ROOT, 'dist/src/data/lawzhidao-csv.js'))};
let n = 0; for await (const r of readLawzhidaoCsv(process.argv[1])) n++; console.log(n);`;

async function main(): Promise<void> {
  process.stderr.write(`generating ${values.mb} MB CSV (UTF-8 and GBK) in ${dir} ...\n`);
  const { utf8, gbk, rows } = await generate();
  const mb = statSync(utf8).size / 1e6;
  const cases: Array<{ name: string; args: string[]; file: string }> = [
    { name: 'read (UTF-8)', args: ['--input-type=module', '-e', READ_ONLY, utf8], file: utf8 },
    { name: 'prepare-data (UTF-8)', args: [join(CLI_DIR, 'prepare-data.js'), '--csv', utf8, '--out', join(dir, 'out-utf8')], file: utf8 },
    { name: 'prepare-data (GBK)', args: [join(CLI_DIR, 'prepare-data.js'), '--csv', gbk, '--out', join(dir, 'out-gbk')], file: gbk },
  ];
  const results: Array<{ case: string; rows: number; mb: number; seconds: number; rowsPerSecond: number; mbPerSecond: number; peakRssMb: number; timeVsRead: number }> = [];
  for (const c of cases) {
    process.stderr.write(`${c.name} ...\n`);
    const m = await measure(c.args);
    if (c.name.startsWith('read') && Number(m.stdout.trim()) !== rows) throw new Error(`read ${m.stdout.trim()} rows, wrote ${rows}`);
    if (c.name.startsWith('prepare') && !m.stdout.includes(`read ${rows} rows`)) throw new Error(`prepare-data did not read every row: ${m.stdout}`);
    const fileMb = statSync(c.file).size / 1e6;
    results.push({
      case: c.name,
      rows,
      mb: Number(fileMb.toFixed(1)),
      seconds: Number(m.seconds.toFixed(2)),
      rowsPerSecond: Math.round(rows / m.seconds),
      mbPerSecond: Number((fileMb / m.seconds).toFixed(1)),
      peakRssMb: Number(m.peakMB.toFixed(1)),
      timeVsRead: 0,
    });
  }
  for (const r of results) r.timeVsRead = Number((r.seconds / results[0]!.seconds).toFixed(2));

  const head = ['case', 'rows', 'MB', 'seconds', 'rows/s', 'MB/s', 'peak RSS MB', 'time vs read'];
  const table = [head, ...results.map((r) => [r.case, r.rows, r.mb, r.seconds, r.rowsPerSecond, r.mbPerSecond, r.peakRssMb, `${r.timeVsRead}×`].map(String))];
  const widths = head.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const [i, row] of table.entries()) {
    console.log(row.map((cell, j) => (j === 0 ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!))).join('  '));
    if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
  console.log(JSON.stringify({ bench: 'prepare-data', csvMb: Number(mb.toFixed(1)), node: process.version, results }, null, 2));
}

await main();
