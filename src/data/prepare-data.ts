/**
 * lawzhidao CSV → ChatGLM3 finetune_demo data: `train.json` and `dev.json`, one
 * `{"conversations":[{"role":"user",...},{"role":"assistant",...}]}` object per line.
 *
 * Algorithm, in two passes with memory bounded by the number of kept rows (an 8-byte score and a
 * 16-byte duplicate fingerprint slot each, plus a 9-byte index while splitting), never by their text:
 *   1. Stream the CSV; drop malformed rows (reported by the reader), rows without a reply, rows
 *      without a title or question, non-best answers under `bestOnly`, and exact duplicates of an
 *      earlier (user turn, reply) pair after folding whitespace. Each kept conversation goes to a
 *      temporary JSONL file, and its split score — a hash of the seed and the conversation — to
 *      an array.
 *   2. The dev set is the N lowest scores (N from devSize, or round(devRatio × kept)); stream the
 *      temporary file once more into train and dev, keeping file order in both.
 * The split depends only on the seed and each conversation's text, so the same rows land in the
 * same set whatever the order of the file.
 *
 * Atomic: train.json, dev.json and prepare-summary.json are written to temporary files and
 * renamed only after both passes succeed; on any failure every temporary file is removed and the
 * output directory is as it was.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AppError } from '../shared/errors.js';
import { AtomicFile, writeFileAtomic } from './atomic-file.js';
import { checkInputFile, fileSize, readLawzhidaoCsv, type CsvEncoding, type EncodingChoice, type LawzhidaoRow, type SkippedRow } from './lawzhidao-csv.js';
import { duplicateKey, formatDropped, RowFilter, type DropReason } from './row-filter.js';

export interface Conversation {
  conversations: Array<{ role: 'user' | 'assistant' | 'system'; content: string }>;
}

export interface PrepareOptions {
  csv: string;
  outDir: string;
  /** Exactly this many dev rows; wins over devRatio. */
  devSize?: number;
  /** Share of kept rows for dev (rounded), when devSize is not given. */
  devRatio?: number;
  seed?: number;
  bestOnly?: boolean;
  encoding?: EncodingChoice;
  onSkip?: (skip: SkippedRow) => void;
  /** `done` of `total`: bytes while reading, conversations while splitting. */
  onProgress?: (step: 'read' | 'split', done: number, total: number) => void;
  /** Aborting stops the run; nothing is left behind. */
  signal?: AbortSignal;
}

export interface PrepareSummary {
  csv: string;
  encoding: CsvEncoding;
  seed: number;
  bestOnly: boolean;
  rowsRead: number;
  kept: number;
  train: number;
  dev: number;
  dropped: Partial<Record<DropReason, number>>;
  /** The first malformed rows, with their line numbers. */
  malformedExamples: SkippedRow[];
  files: { train: string; dev: string; summary: string };
}

export const DEFAULT_DEV_RATIO = 0.1;
export const DEFAULT_SEED = 42;

/** Letters and digits only: what decides whether the question says more than the title. */
function essence(s: string): string {
  return s.replace(/[\s\p{P}\p{S}]/gu, '').toLowerCase();
}

/**
 * The user turn: the title, with the question on a new line when there is one and it says more
 * than the title (its letters and digits are not already all in the title). Without a title, the
 * question alone.
 */
export function userTurn(title: string, question: string): string {
  if (!title) return question;
  if (!question) return title;
  const q = essence(question);
  if (q === '' || essence(title).includes(q)) return title;
  return `${title}\n${question}`;
}

export function toConversation(row: Pick<LawzhidaoRow, 'title' | 'question' | 'reply'>): Conversation {
  return {
    conversations: [
      { role: 'user', content: userTurn(row.title, row.question) },
      { role: 'assistant', content: row.reply },
    ],
  };
}

/** A uniform score in [0, 1) from the seed and the conversation; the lowest go to dev. */
export function splitScore(seed: number, key: Buffer): number {
  const d = createHash('sha256').update(`${seed}\u0000`).update(key).digest();
  return d.readUIntBE(0, 6) / 2 ** 48;
}

/** Indexes of the `n` lowest scores (ties by position), as a membership mask. */
export function pickLowest(scores: Float64Array, n: number): Uint8Array {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[a]! - scores[b]! || a - b);
  const mask = new Uint8Array(scores.length);
  for (let i = 0; i < n; i++) mask[order[i]!] = 1;
  return mask;
}

class ScoreList {
  private data = new Float64Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

export function devCount(kept: number, devSize: number | undefined, devRatio: number | undefined): number {
  if (devSize !== undefined) {
    if (devSize >= kept) {
      throw new AppError('INVALID_REQUEST', `--dev-size: ${devSize} leaves no training rows: only ${kept} rows are kept`, { param: '--dev-size' });
    }
    return devSize;
  }
  const n = Math.round((devRatio ?? DEFAULT_DEV_RATIO) * kept);
  return Math.min(n, kept - 1);
}

export async function prepareData(options: PrepareOptions): Promise<PrepareSummary> {
  const seed = options.seed ?? DEFAULT_SEED;
  const bestOnly = options.bestOnly ?? false;
  await checkInputFile(options.csv);
  await mkdir(options.outDir, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw new AppError('INVALID_REQUEST', `--out: cannot create ${options.outDir}: ${err.code ?? err.message}`, { param: '--out' });
  });
  const files = {
    train: join(options.outDir, 'train.json'),
    dev: join(options.outDir, 'dev.json'),
    summary: join(options.outDir, 'prepare-summary.json'),
  };
  const filter = new RowFilter(bestOnly);
  let encoding: CsvEncoding = 'utf8';
  const scores = new ScoreList();
  const bytes = await fileSize(options.csv);

  // Scratch file of the kept conversations; never renamed, removed at the end.
  const all = await AtomicFile.create(join(options.outDir, 'kept.jsonl'));
  const outputs: AtomicFile[] = [];
  try {
    // Pass 1: filter, deduplicate, score.
    for await (const row of readLawzhidaoCsv(options.csv, {
      encoding: options.encoding ?? 'auto',
      onEncoding: (e) => {
        encoding = e;
      },
      onProgress: (done) => options.onProgress?.('read', done, bytes),
      onSkip: (skip) => {
        filter.onSkip(skip);
        options.onSkip?.(skip);
      },
    })) {
      options.signal?.throwIfAborted();
      const conversation = toConversation(row);
      const key = duplicateKey(conversation.conversations[0]!.content, row.reply);
      if (filter.check(row, key) !== null) continue;
      scores.push(splitScore(seed, key));
      await all.write(JSON.stringify(conversation) + '\n');
    }
    filter.done();
    if (scores.length === 0) {
      throw new AppError('INVALID_DATA', `${options.csv}: no usable rows (${filter.rowsRead} read, all dropped)`, { param: '--csv' });
    }
    const nDev = devCount(scores.length, options.devSize, options.devRatio);
    const isDev = pickLowest(scores.view(), nDev);
    await all.close();

    // Pass 2: split in file order.
    const train = await AtomicFile.create(files.train);
    outputs.push(train);
    const dev = await AtomicFile.create(files.dev);
    outputs.push(dev);
    const lines = createInterface({ input: createReadStream(all.tempPath, 'utf8'), crlfDelay: Infinity });
    let i = 0;
    for await (const line of lines) {
      options.signal?.throwIfAborted();
      await (isDev[i] ? dev : train).write(line + '\n');
      i++;
      if (i % 10_000 === 0) options.onProgress?.('split', i, scores.length);
    }
    options.onProgress?.('split', i, scores.length);
    const summary: PrepareSummary = {
      csv: options.csv,
      encoding,
      seed,
      bestOnly,
      rowsRead: filter.rowsRead,
      kept: scores.length,
      train: scores.length - nDev,
      dev: nDev,
      dropped: filter.dropped,
      malformedExamples: filter.malformedExamples,
      files,
    };
    await train.commit();
    await dev.commit();
    await writeFileAtomic(files.summary, JSON.stringify(summary, null, 2) + '\n');
    return summary;
  } catch (err) {
    await Promise.all(outputs.map((o) => o.abort()));
    throw err;
  } finally {
    await all.abort();
  }
}

/** The summary as the lines the CLI prints. */
export function formatSummary(s: PrepareSummary): string {
  return [
    `read ${s.rowsRead} rows from ${s.csv} (${s.encoding === 'gbk' ? 'GBK' : 'UTF-8'})`,
    `kept ${s.kept}: train ${s.train} → ${s.files.train}, dev ${s.dev} → ${s.files.dev} (seed ${s.seed}${s.bestOnly ? ', best answers only' : ''})`,
    ...formatDropped(s.dropped, s.malformedExamples),
  ].join('\n');
}
