/**
 * Knowledge-base entries as operators send them (`POST /admin/knowledge`): the JSON shape
 * `{id?, question, detail?, answer, source?}` or a lawzhidao CSV body, checked against fixed
 * bounds and turned into `KnowledgeEntry` objects. Everything of one request is checked before
 * anything is stored, so a bad entry leaves the knowledge base as it was.
 *
 * Bounds, and why: at most 1,000 entries a request (a batch a replica applies in well under a
 * second; larger loads are several requests, or the file); ids of letters, digits and `. _ : -`,
 * at most 128 characters (they travel in a response header and name Redis hash fields); a
 * question at most 1,000 characters, a detail 5,000, an answer 20,000 (a long lawzhidao reply is
 * about 2,000; an answer is read into a prompt whose knowledge budget is a few thousand
 * characters), a source 1,000. Control characters other than tab and line breaks, and unpaired
 * surrogates, are refused: they are no part of a legal text and break terminals, logs and
 * tokenizers. HTML is text like any other: it is stored as sent, handed to the model as text and
 * only ever answered inside JSON strings, never rendered.
 */
import { z } from 'zod';
import { entryFromRow } from '../../data/knowledge-base.js';
import { readLawzhidaoCsvBytes, type SkippedRow } from '../../data/lawzhidao-csv.js';
import { AppError } from '../../shared/errors.js';
import type { KnowledgeEntry } from '../../shared/knowledge-entry.js';

export const KNOWLEDGE_LIMITS = {
  entriesPerRequest: 1000,
  idChars: 128,
  questionChars: 1000,
  detailChars: 5000,
  answerChars: 20_000,
  sourceChars: 1000,
} as const;

export const KNOWLEDGE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** C0 controls but tab, line feed and carriage return; DEL; C1 controls. */
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function cleanText(max: number) {
  return z
    .string()
    .max(max, `at most ${max} characters`)
    .refine((s) => !CONTROL.test(s), 'control characters other than tab and line breaks are not allowed')
    .refine((s) => !LONE_SURROGATE.test(s), 'an unpaired UTF-16 surrogate is not text')
    .transform((s) => s.trim());
}

function requiredText(max: number) {
  return cleanText(max).refine((s) => s !== '', 'must not be empty');
}

export const KnowledgeIdSchema = z
  .string()
  .regex(KNOWLEDGE_ID_PATTERN, `letters, digits and . _ : - only, starting with a letter or digit, at most ${KNOWLEDGE_LIMITS.idChars} characters`);

export const KnowledgeEntryInputSchema = z
  .object({
    id: KnowledgeIdSchema.optional().describe('absent: `lz-` and 12 hex digits of a digest of the text (the ids build-kb gives)'),
    question: requiredText(KNOWLEDGE_LIMITS.questionChars).describe('the question, as a user would ask it (searched, weighted ×2)'),
    detail: cleanText(KNOWLEDGE_LIMITS.detailChars).optional().describe('the circumstances of the question (searched)'),
    answer: requiredText(KNOWLEDGE_LIMITS.answerChars).describe('the answer put into prompts and given by the fallback'),
    source: cleanText(KNOWLEDGE_LIMITS.sourceChars).optional().describe('where the answer comes from (a statute, a document)'),
  })
  .strict();
export type KnowledgeEntryInput = z.infer<typeof KnowledgeEntryInputSchema>;

export const KnowledgeBodySchema = z
  .object({
    entries: z
      .array(KnowledgeEntryInputSchema)
      .min(1, 'at least one entry')
      .max(KNOWLEDGE_LIMITS.entriesPerRequest, `at most ${KNOWLEDGE_LIMITS.entriesPerRequest} entries per request`),
  })
  .strict();
export type KnowledgeBody = z.infer<typeof KnowledgeBodySchema>;

/** An entry as the admin API shows it. */
export function entryView(entry: KnowledgeEntry): { id: string; question: string; detail?: string; answer: string; source?: string } {
  return {
    id: entry.id,
    question: entry.title,
    ...(entry.question ? { detail: entry.question } : {}),
    answer: entry.reply,
    ...(entry.source ? { source: entry.source } : {}),
  };
}

/**
 * Checked inputs → entries. An entry without an id gets the digest id of its text, so sending the
 * same entries twice stores them once; identical entries in one request collapse into one. The
 * same id given to two different entries is refused (400, naming the later one).
 */
export function toKnowledgeEntries(inputs: readonly KnowledgeEntryInput[], where: (i: number) => string = (i) => `entries.${i}`): KnowledgeEntry[] {
  const out: KnowledgeEntry[] = [];
  /** id → [its place in `out`, the input it came from] */
  const seen = new Map<string, [number, number]>();
  inputs.forEach((input, i) => {
    const made = entryFromRow({ title: input.question, question: input.detail ?? '', reply: input.answer });
    const entry: KnowledgeEntry = { ...made, id: input.id ?? made.id };
    if (input.source) entry.source = input.source;
    const earlier = seen.get(entry.id);
    if (earlier !== undefined) {
      const first = out[earlier[0]]!;
      if (first.title === entry.title && first.question === entry.question && first.reply === entry.reply && first.source === entry.source) return;
      const param = `${where(i)}.id`;
      throw new AppError('INVALID_REQUEST', `${param}: the id ${entry.id} is already used by ${where(earlier[1])} in this request`, { param });
    }
    seen.set(entry.id, [out.length, i]);
    out.push(entry);
  });
  return out;
}

/** A lawzhidao CSV body: its rows as inputs (not yet checked), with the line each starts on. */
export interface CsvKnowledge {
  body: { entries: unknown[] };
  lines: number[];
}

/**
 * Reads a lawzhidao CSV body (`title,question,reply[,is_best]`; UTF-8 or GBK) into entry inputs:
 * title → question, question → detail, reply → answer. A malformed row refuses the whole body
 * (400 naming its line): an operator's upload should be fixed, not partly applied.
 */
export async function csvKnowledge(bytes: Uint8Array): Promise<CsvKnowledge> {
  const entries: unknown[] = [];
  const lines: number[] = [];
  let bad: SkippedRow | null = null;
  try {
    for await (const row of readLawzhidaoCsvBytes(bytes, 'the CSV body', { onSkip: (skip) => (bad ??= skip) })) {
      if (bad) break;
      // A row without a title uses its question as the question, as build-kb does.
      entries.push({ question: row.title || row.question, ...(row.title && row.question ? { detail: row.question } : {}), answer: row.reply });
      lines.push(row.line);
      // Past the limit the body is refused anyway; reading on would only cost time.
      if (entries.length > KNOWLEDGE_LIMITS.entriesPerRequest) break;
    }
  } catch (err) {
    if (err instanceof AppError) throw new AppError('INVALID_DATA', err.message, { param: err.param ?? 'body' });
    throw err;
  }
  if (bad) {
    const { line, message } = bad as SkippedRow;
    throw new AppError('INVALID_DATA', `CSV line ${line}: ${message}; nothing was stored`, { param: `line ${line}` });
  }
  if (entries.length === 0) throw new AppError('INVALID_DATA', 'the CSV body has a header but no rows', { param: 'body' });
  return { body: { entries }, lines };
}
