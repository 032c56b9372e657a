/**
 * Streaming reader of the lawzhidao CSV (`title,question,reply,is_best`), the one reader that
 * prepare-data, the knowledge-base builder and the gateway's knowledge-base loader share.
 *
 * Algorithm: the file is read in chunks; the first 64 KiB decide the encoding when it is `auto`
 * (a UTF-8 BOM or valid UTF-8 → UTF-8, else valid GBK → GBK, else UTF-8 with the bad bytes
 * reported row by row). Chunks are decoded with a streaming TextDecoder (a character split
 * across chunks is held back), CRLF is folded to LF (a `\r` at the end of a chunk waits for the
 * next one), and csv-parse turns the text into records. Memory is bounded by the chunk size plus
 * the longest record (`maxRecordChars`), never by the file.
 *
 * Line numbers are our own count of `\n` in each record's raw text: csv-parse counts an embedded
 * CRLF as two lines, and folding CRLF first makes the raw text cover every character of the file.
 *
 * Failure: a malformed row (wrong number of fields, a broken quote, undecodable bytes, an
 * is_best that is not 0/1) is reported through `onSkip` with the line it starts on and skipped.
 * What makes the rest of the file unreadable (no usable header, a record longer than
 * `maxRecordChars` — in practice an unclosed quote — or a UTF-16 file) throws AppError
 * INVALID_DATA; consumers write their output atomically, so nothing half-written is left.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { parse, type CsvError, type Options as CsvOptions } from 'csv-parse';
import { AppError } from '../shared/errors.js';

export type CsvEncoding = 'utf8' | 'gbk';
export type EncodingChoice = CsvEncoding | 'auto';

export interface LawzhidaoRow {
  /** The line of the file that the row starts on (1 is the header). */
  line: number;
  title: string;
  question: string;
  reply: string;
  /** `is_best` as 1/0; null when the column is absent or the cell is empty. */
  isBest: boolean | null;
}

export type SkipReason = 'FIELD_COUNT' | 'QUOTE' | 'ENCODING' | 'IS_BEST' | 'CSV';

export interface SkippedRow {
  line: number;
  reason: SkipReason;
  message: string;
}

export interface ReadCsvOptions {
  encoding?: EncodingChoice;
  onSkip?: (skip: SkippedRow) => void;
  /** Called once the encoding is known, before the first row. */
  onEncoding?: (encoding: CsvEncoding) => void;
  /** Called after each chunk with the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** A record longer than this (characters) stops the read with INVALID_DATA. */
  maxRecordChars?: number;
}

export const CSV_COLUMNS = ['title', 'question', 'reply', 'is_best'] as const;
const REQUIRED_COLUMNS = ['title', 'reply'] as const;
const SNIFF_BYTES = 64 * 1024;
export const DEFAULT_MAX_RECORD_CHARS = 1_000_000;

/** Picks the encoding of a file from its first bytes (`complete` when that is the whole file). */
export function detectEncoding(head: Uint8Array, complete: boolean): CsvEncoding {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return 'utf8';
  if ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff)) {
    throw new AppError('INVALID_DATA', 'the CSV is UTF-16; save it as UTF-8 or GBK', { param: 'encoding' });
  }
  for (const [label, enc] of [['utf-8', 'utf8'], ['gbk', 'gbk']] as const) {
    try {
      // stream: a multi-byte character cut off by the end of the sample is not an error.
      new TextDecoder(label, { fatal: true }).decode(head, { stream: !complete });
      return enc;
    } catch {
      // not this one
    }
  }
  return 'utf8';
}

/** Decodes byte chunks to text with CRLF folded to LF, choosing the encoding first when asked. */
async function* decodeText(
  source: AsyncIterable<Buffer>,
  choice: EncodingChoice,
  onEncoding: (enc: CsvEncoding) => void,
  onProgress: (bytes: number) => void,
): AsyncGenerator<string> {
  const iterator = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headBytes = 0;
  let done = false;
  while (headBytes < SNIFF_BYTES) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    head.push(next.value);
    headBytes += next.value.length;
  }
  const encoding = choice === 'auto' ? detectEncoding(Buffer.concat(head), done) : choice;
  onEncoding(encoding);
  const decoder = new TextDecoder(encoding === 'gbk' ? 'gbk' : 'utf-8');
  let bytes = 0;
  let carry = '';
  const fold = (text: string, last: boolean): string => {
    let t = carry + text;
    carry = '';
    if (!last && t.endsWith('\r')) {
      carry = '\r';
      t = t.slice(0, -1);
    }
    return t.replace(/\r\n/g, '\n');
  };
  const chunks: AsyncIterable<Buffer> = {
    async *[Symbol.asyncIterator]() {
      yield* head;
      if (done) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value;
      }
    },
  };
  for await (const chunk of chunks) {
    bytes += chunk.length;
    onProgress(bytes);
    const text = fold(decoder.decode(chunk, { stream: true }), false);
    if (text) yield text;
  }
  const rest = fold(decoder.decode(), true);
  if (rest) yield rest;
}

function countNewlines(s: string, from = 0): number {
  let n = 0;
  for (let i = s.indexOf('\n', from); i !== -1; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

function leadingNewlines(s: string): number {
  let i = 0;
  while (s[i] === '\n') i++;
  return i;
}

function parseIsBest(cell: string): boolean | null | undefined {
  const v = cell.trim().toLowerCase();
  if (v === '') return null;
  if (v === '1' || v === '1.0' || v === 'true') return true;
  if (v === '0' || v === '0.0' || v === 'false') return false;
  return undefined;
}

function skipReason(code: string | undefined): SkipReason {
  if (code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH') return 'FIELD_COUNT';
  if (code !== undefined && /QUOTE/.test(code)) return 'QUOTE';
  return 'CSV';
}

interface Parsed {
  line: number;
  fields: string[];
}

/**
 * Reads a lawzhidao CSV file row by row. The header row names the columns (any order; `title`
 * and `reply` are required, `question` and `is_best` optional, others ignored).
 */
export async function* readLawzhidaoCsv(path: string, options: ReadCsvOptions = {}): AsyncGenerator<LawzhidaoRow> {
  await checkInputFile(path);
  yield* readRows(() => createReadStream(path), path, options);
}

/** Reads a lawzhidao CSV held in memory (a request body) as `readLawzhidaoCsv` reads a file; `name` is what errors call it. */
export async function* readLawzhidaoCsvBytes(bytes: Uint8Array, name: string, options: ReadCsvOptions = {}): AsyncGenerator<LawzhidaoRow> {
  yield* readRows(() => [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)], name, options);
}

async function* readRows(open: () => Iterable<Buffer> | AsyncIterable<Buffer>, path: string, options: ReadCsvOptions): AsyncGenerator<LawzhidaoRow> {
  const maxRecordChars = options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  const state: { encoding: CsvEncoding } = { encoding: 'utf8' };
  let linesBefore = 0;
  let fatal: AppError | null = null;
  const onSkip = options.onSkip ?? (() => {});
  // csv-parse reports a skipped record when it parses it, ahead of the records still buffered
  // for the iterator; holding skips here until the rows before them are out keeps reports in
  // file order. Bounded by what csv-parse has buffered.
  const pending: SkippedRow[] = [];
  const flushBefore = (line: number): void => {
    while (pending.length > 0 && pending[0]!.line < line) onSkip(pending.shift()!);
  };
  // Line accounting runs inside csv-parse's callbacks, which fire in file order; records are
  // consumed later through the async iterator.
  const startLine = (raw: string): number => {
    const line = linesBefore + 1 + leadingNewlines(raw);
    linesBefore += countNewlines(raw);
    return line;
  };
  const csvOptions: CsvOptions = {
    raw: true,
    relax_quotes: true,
    skip_empty_lines: true,
    skip_records_with_error: true,
    max_record_size: maxRecordChars,
    // With `raw`, csv-parse hands on_record `{record, raw}`; its types say a plain record.
    on_record: ((item: { record: string[]; raw: string }): Parsed => ({
      line: startLine(item.raw),
      fields: item.record,
    })) as unknown as CsvOptions['on_record'],
    on_skip: (err: CsvError | undefined, raw: string | undefined) => {
      const line = startLine(raw ?? '');
      if (err?.code === 'CSV_MAX_RECORD_SIZE') {
        fatal ??= new AppError(
          'INVALID_DATA',
          `line ${line}: a record longer than ${maxRecordChars} characters (most likely an unclosed quote); the rest of the file cannot be read`,
          { param: `line ${line}` },
        );
        return undefined;
      }
      pending.push({ line, reason: skipReason(err?.code), message: (err?.message ?? 'malformed record').replace(/ (on|at) line \d+/, '') });
      return undefined;
    },
  };
  const parser = parse(csvOptions);

  const piping = pipeline(
    decodeText(toAsync(open()), options.encoding ?? 'auto', (e) => {
      state.encoding = e;
      options.onEncoding?.(e);
    }, options.onProgress ?? (() => {})),
    parser,
  );
  // Surfaced through the iterator below; this only keeps the rejection from being unhandled.
  piping.catch(() => {});

  let columns: Map<string, number> | null = null;
  try {
    for await (const { line, fields } of parser as AsyncIterable<Parsed>) {
      flushBefore(line);
      if (columns === null) {
        columns = readHeader(fields);
        continue;
      }
      const cell = (name: string): string => {
        const i = columns!.get(name);
        return i === undefined ? '' : (fields[i] ?? '').trim();
      };
      if (fields.some((f) => f.includes('\uFFFD'))) {
        onSkip({ line, reason: 'ENCODING', message: `bytes that are not valid ${state.encoding === 'gbk' ? 'GBK' : 'UTF-8'}` });
        continue;
      }
      const isBest = parseIsBest(cell('is_best'));
      if (isBest === undefined) {
        onSkip({ line, reason: 'IS_BEST', message: `is_best must be 0 or 1, got ${JSON.stringify(cell('is_best').slice(0, 20))}` });
        continue;
      }
      yield { line, title: cell('title'), question: cell('question'), reply: cell('reply'), isBest };
    }
    await piping;
    flushBefore(Infinity);
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('INVALID_DATA', `cannot read ${path}: ${(err as Error).message}`, { param: path, cause: err });
  } finally {
    parser.destroy();
  }
  if (fatal) throw fatal;
  if (columns === null) {
    throw new AppError('INVALID_DATA', `${path} is empty: expected a header ${CSV_COLUMNS.join(',')}`, { param: 'header' });
  }
}

async function* toAsync(chunks: Iterable<Buffer> | AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  yield* chunks;
}

function readHeader(fields: string[]): Map<string, number> {
  const columns = new Map<string, number>();
  fields.forEach((f, i) => {
    const name = f.trim().toLowerCase();
    if (name && !columns.has(name)) columns.set(name, i);
  });
  const missing = REQUIRED_COLUMNS.filter((c) => !columns.has(c));
  if (missing.length > 0) {
    throw new AppError(
      'INVALID_DATA',
      `line 1: the header lacks ${missing.join(', ')} (expected ${CSV_COLUMNS.join(',')}, got ${fields.join(',').slice(0, 100)})`,
      { param: 'header' },
    );
  }
  return columns;
}

/** Fails with one clear INVALID_DATA error when `path` is not a readable regular file. */
export async function checkInputFile(path: string): Promise<void> {
  try {
    if (!(await stat(path)).isFile()) throw new Error('not a regular file');
  } catch (err) {
    throw new AppError('INVALID_DATA', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { param: path, cause: err });
  }
}

/** The size of a file in bytes, for progress bars (0 when it cannot be read; the reader reports that). */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
