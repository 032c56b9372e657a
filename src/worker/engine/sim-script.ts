/**
 * The simulated engine's script (`WORKER_SIM_SCRIPT`): a JSONL file, one
 * `{ "match": "<substring of the last user message (or tool result)>", "reply": "<what the model writes after
 * <|assistant|>, metadata line first>" }` per line. The first entry whose `match` occurs in the
 * request's last user message answers it — or its last tool result, when the conversation ends
 * with one (a tool loop's second round) — (an empty `match` answers everything that reaches it).
 *
 * A reply is written in ChatGLM3's own form: its first line is the metadata line (empty for a
 * plain answer, so a plain reply starts with "\n"; a tool's name for a call), and the role tokens
 * `<|system|>`, `<|user|>`, `<|assistant|>` and `<|observation|>` in it become their special ids,
 * so one reply can hold several calls (`<|assistant|>` between them) and end on `<|observation|>`
 * as the real model does. Other text is encoded with the model's tokenizer as it is.
 *
 * A file that cannot be used stops the worker's start with one line naming the file, the line
 * and the field (`INVALID_DATA`); nothing is skipped, since a script that silently lost an
 * entry would make a test or a demo answer differently from what was written.
 */
import { stat } from 'node:fs/promises';
import { z } from 'zod';
import { readJsonLines } from '../../data/jsonl.js';
import { AppError } from '../../shared/errors.js';
import type { ChatGLMTokenizer } from '../../tokenizer/tokenizer.js';

/** A script larger than this is refused before it is read (it is held in memory, tokenized). */
export const MAX_SCRIPT_BYTES = 64 * 1024 * 1024;

/** The special tokens a reply may write as text; `sop`, `eop` and the masks stay text. */
export const REPLY_SPECIAL_TOKENS = ['<|system|>', '<|user|>', '<|assistant|>', '<|observation|>'] as const;

const EntrySchema = z.object({ match: z.string(), reply: z.string() }).strict();

export interface SimScriptEntry {
  match: string;
  reply: string;
  /** Line of the script file (1-based), for messages. */
  line: number;
}

function scriptError(source: string, line: number | null, message: string): AppError {
  return new AppError('INVALID_DATA', `${source}${line === null ? '' : `:${line}`}: ${message}`);
}

/** One script line's value as an entry; INVALID_DATA naming the line and the field otherwise. */
export function parseScriptEntry(value: unknown, line: number, source: string): SimScriptEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw scriptError(source, line, 'a line must be a JSON object {"match": "...", "reply": "..."}');
  }
  const parsed = EntrySchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.code === 'unrecognized_keys' ? issue.keys[0] : issue.path.join('.');
    const message = issue.code === 'unrecognized_keys' ? 'unknown field (only match and reply)' : issue.message;
    throw scriptError(source, line, `${field}: ${message}`);
  }
  return { ...parsed.data, line };
}

/** Reads and checks a whole script file. */
export async function loadSimScript(path: string): Promise<SimScriptEntry[]> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw scriptError(path, null, 'not a file');
    size = s.size;
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw scriptError(path, null, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (size > MAX_SCRIPT_BYTES) throw scriptError(path, null, `${size} bytes, more than the ${MAX_SCRIPT_BYTES} a script may have`);
  const entries: SimScriptEntry[] = [];
  const onBadLine = (line: number, message: string) => {
    throw scriptError(path, line, message);
  };
  try {
    for await (const { line, value } of readJsonLines(path, onBadLine)) entries.push(parseScriptEntry(value, line, path));
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw scriptError(path, null, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return entries;
}

const SPECIAL_IN_TEXT = new RegExp(REPLY_SPECIAL_TOKENS.map((t) => t.replace(/[|[\]]/g, '\\$&')).join('|'), 'g');

/**
 * Token ids of reply text: the role tokens as their special ids, the text between them encoded
 * as plain text (each run on its own, as the chat template encodes each turn's parts).
 */
export function encodeReply(tokenizer: ChatGLMTokenizer, text: string): number[] {
  const ids: number[] = [];
  let from = 0;
  for (const m of text.matchAll(SPECIAL_IN_TEXT)) {
    ids.push(...tokenizer.encode(text.slice(from, m.index)));
    ids.push(tokenizer.specialTokens[m[0] as (typeof REPLY_SPECIAL_TOKENS)[number]]);
    from = m.index + m[0].length;
  }
  ids.push(...tokenizer.encode(text.slice(from)));
  return ids;
}
