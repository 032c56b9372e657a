/**
 * The knowledge base that the gateway answers from when it degrades: `KnowledgeEntry` objects
 * (`{id,title,question,reply}`, src/shared/knowledge-entry.ts), one JSON object per line.
 *
 * `buildKnowledgeBase` turns a lawzhidao CSV into that JSONL (atomic write, same row filter as
 * prepare-data). `loadKnowledgeEntries` is what the gateway calls: it reads either the JSONL or
 * a lawzhidao CSV directly (by the file's extension), reports every bad line with its number
 * through `onSkip`, skips it, and never throws for a bad line — only for a file that cannot be
 * read at all (INVALID_DATA).
 *
 * Entry ids are `lz-` and 12 hex digits of a digest of the entry's text, so they stay the same
 * when the CSV is reordered or rebuilt, and identical rows collapse into one entry.
 */
import { createHash } from 'node:crypto';
import { extname } from 'node:path';
import { AppError } from '../shared/errors.js';
import { KnowledgeEntrySchema, type KnowledgeEntry } from '../shared/knowledge-entry.js';
import { AtomicFile } from './atomic-file.js';
import { readJsonLines } from './jsonl.js';
import { checkInputFile, fileSize, readLawzhidaoCsv, type CsvEncoding, type EncodingChoice, type LawzhidaoRow, type SkippedRow } from './lawzhidao-csv.js';
import { duplicateKey, RowFilter, type DropReason } from './row-filter.js';

export type KnowledgeSkipReason = SkippedRow['reason'] | 'JSON' | 'SCHEMA' | 'DUPLICATE_ID' | 'DROPPED';

export interface KnowledgeSkip {
  line: number;
  reason: KnowledgeSkipReason;
  message: string;
}

export interface LoadKnowledgeOptions {
  /** Told about each line that was skipped; by default one line per skip goes to stderr. */
  onSkip?: (skip: KnowledgeSkip) => void;
  /** For a CSV source: keep only answers marked best. */
  bestOnly?: boolean;
  /** For a CSV source. */
  encoding?: EncodingChoice;
}

/** The knowledge-base entry for a CSV row; its id is fixed by its text. */
export function entryFromRow(row: Pick<LawzhidaoRow, 'title' | 'question' | 'reply'>): KnowledgeEntry {
  // An entry needs a title; a row that has only a question uses it as the title.
  const title = row.title || row.question;
  const question = row.title ? row.question : '';
  const digest = createHash('sha1').update(`${title}\u0000${question}\u0000${row.reply}`).digest('hex');
  return { id: `lz-${digest.slice(0, 12)}`, title, question, reply: row.reply };
}

/** Reads the CSV through the shared reader and row filter, yielding one entry per kept row. */
async function* entriesFromCsv(
  path: string,
  filter: RowFilter,
  options: { encoding?: EncodingChoice; onSkip?: (skip: KnowledgeSkip) => void; onEncoding?: (e: CsvEncoding) => void; onProgress?: (bytes: number) => void },
): AsyncGenerator<KnowledgeEntry> {
  for await (const row of readLawzhidaoCsv(path, {
    encoding: options.encoding ?? 'auto',
    onEncoding: options.onEncoding,
    onProgress: options.onProgress,
    onSkip: (skip) => {
      filter.onSkip(skip);
      options.onSkip?.(skip);
    },
  })) {
    const entry = entryFromRow(row);
    const dropped = filter.check(row, duplicateKey(entry.title, entry.question, entry.reply));
    if (dropped === null) yield entry;
    // Answers left out by choice (bestOnly) are not faults of the file.
    else if (dropped !== 'not_best') options.onSkip?.({ line: row.line, reason: 'DROPPED', message: dropped });
  }
  filter.done();
}

export interface BuildKnowledgeOptions {
  csv: string;
  out: string;
  bestOnly?: boolean;
  encoding?: EncodingChoice;
  onProgress?: (bytesRead: number, totalBytes: number) => void;
  /** Aborting stops the build; no file is left behind. */
  signal?: AbortSignal;
}

export interface BuildKnowledgeSummary {
  csv: string;
  out: string;
  encoding: CsvEncoding;
  rowsRead: number;
  entries: number;
  dropped: Partial<Record<DropReason, number>>;
  malformedExamples: SkippedRow[];
}

export async function buildKnowledgeBase(options: BuildKnowledgeOptions): Promise<BuildKnowledgeSummary> {
  await checkInputFile(options.csv);
  const total = await fileSize(options.csv);
  const filter = new RowFilter(options.bestOnly ?? false);
  let encoding: CsvEncoding = 'utf8';
  let entries = 0;
  const out = await AtomicFile.create(options.out).catch((err: NodeJS.ErrnoException) => {
    throw new AppError('INVALID_REQUEST', `--out: cannot write ${options.out}: ${err.code ?? err.message}`, { param: '--out' });
  });
  try {
    for await (const entry of entriesFromCsv(options.csv, filter, {
      encoding: options.encoding,
      onEncoding: (e) => {
        encoding = e;
      },
      onProgress: (bytes) => options.onProgress?.(bytes, total),
    })) {
      options.signal?.throwIfAborted();
      await out.write(JSON.stringify(entry) + '\n');
      entries++;
    }
    if (entries === 0) {
      throw new AppError('INVALID_DATA', `${options.csv}: no usable rows (${filter.rowsRead} read, all dropped)`, { param: '--csv' });
    }
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return {
    csv: options.csv,
    out: options.out,
    encoding,
    rowsRead: filter.rowsRead,
    entries,
    dropped: filter.dropped,
    malformedExamples: filter.malformedExamples,
  };
}

/** Reads a `.jsonl` knowledge base line by line; bad lines are reported and skipped. */
async function loadJsonl(path: string, onSkip: (skip: KnowledgeSkip) => void): Promise<KnowledgeEntry[]> {
  const entries: KnowledgeEntry[] = [];
  const ids = new Set<string>();
  for await (const { line, value } of readJsonLines(path, (line, message) => onSkip({ line, reason: 'JSON', message }))) {
    const parsed = KnowledgeEntrySchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.map(String).join('.') || '(entry)';
      onSkip({ line, reason: 'SCHEMA', message: `${field}: ${issue.message}` });
      continue;
    }
    if (ids.has(parsed.data.id)) {
      onSkip({ line, reason: 'DUPLICATE_ID', message: `id ${parsed.data.id} appears earlier in the file` });
      continue;
    }
    ids.add(parsed.data.id);
    entries.push(parsed.data);
  }
  return entries;
}

function stderrReporter(path: string): (skip: KnowledgeSkip) => void {
  return (skip) => process.stderr.write(`knowledge base ${path} line ${skip.line}: skipped (${skip.reason}) ${skip.message}\n`);
}

/**
 * Loads the knowledge base the gateway answers from: a `.jsonl` file of entries (what build-kb
 * writes) or a lawzhidao `.csv` read directly. Bad lines are passed to `onSkip` and skipped.
 * Throws AppError INVALID_DATA only when the file cannot be used at all (missing, another
 * extension, a CSV without the needed header).
 */
export async function loadKnowledgeEntries(path: string, options: LoadKnowledgeOptions = {}): Promise<KnowledgeEntry[]> {
  const onSkip = options.onSkip ?? stderrReporter(path);
  await checkInputFile(path);
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') {
    try {
      return await loadJsonl(path, onSkip);
    } catch (err) {
      throw new AppError('INVALID_DATA', `cannot read ${path}: ${(err as Error).message}`, { param: path, cause: err });
    }
  }
  if (ext === '.csv') {
    const entries: KnowledgeEntry[] = [];
    const filter = new RowFilter(options.bestOnly ?? false);
    for await (const entry of entriesFromCsv(path, filter, { encoding: options.encoding, onSkip })) entries.push(entry);
    return entries;
  }
  throw new AppError('INVALID_DATA', `${path}: a knowledge base is a .jsonl file (from build-kb) or a lawzhidao .csv`, { param: path });
}
