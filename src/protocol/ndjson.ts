/**
 * The worker's answer on the wire: NDJSON, one event per line, flushed as produced. The worker
 * writes lines with `ndjsonLine`; the gateway reads them with `EventLineReader`, which parses each
 * chunk where it lands (lines and characters may be split across chunks) and fails with
 * WORKER_ERROR on anything that is not an event of the protocol.
 */
import { AppError } from '../shared/errors.js';
import { GenerateEventSchema, type GenerateEvent } from './schemas.js';

export const NDJSON_CONTENT_TYPE = 'application/x-ndjson';

/** Serialises one event as an NDJSON line. */
export function ndjsonLine(event: GenerateEvent): string {
  return `${JSON.stringify(event)}\n`;
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;

/**
 * The two events of every token stream checked by hand (they are most of the lines); anything
 * else, or anything that fails here, goes through the protocol's zod schema, which also words
 * the error. Both accept exactly the same `start` and plain `token` events.
 */
function quickEvent(v: Record<string, unknown>): GenerateEvent | null {
  if (v.type === 'token') {
    const ids = v.ids;
    if (typeof v.text !== 'string' || v.logprobs !== undefined || !Array.isArray(ids)) return null;
    for (let i = 0; i < ids.length; i++) if (!Number.isInteger(ids[i])) return null;
    if (v.segment === undefined) return { type: 'token', ids: ids as number[], text: v.text };
    if (!isCount(v.segment)) return null;
    return { type: 'token', ids: ids as number[], text: v.text, segment: v.segment };
  }
  if (v.type === 'start' && isCount(v.prompt_tokens)) return { type: 'start', prompt_tokens: v.prompt_tokens };
  return null;
}

/** One NDJSON line as an event; WORKER_ERROR for anything that is not one. */
export function parseEvent(line: string): GenerateEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new AppError('WORKER_ERROR', 'worker sent a line that is not JSON');
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const quick = quickEvent(value as Record<string, unknown>);
    if (quick) return quick;
  }
  const parsed = GenerateEventSchema.safeParse(value);
  if (!parsed.success) throw new AppError('WORKER_ERROR', `worker sent an invalid event (${parsed.error.issues[0]?.path.join('.') || 'type'})`);
  return parsed.data;
}

/** Longest NDJSON line read (a worker's `end` event is a few hundred bytes; a token line less). */
export const MAX_LINE_BYTES = 1 << 20;
const NEWLINE = 0x0a;

/**
 * Splits a byte stream into NDJSON events. Lines are found in the bytes and each is decoded on
 * its own, so a chunk never becomes one string that is then cut into lines; a newline byte never
 * occurs inside a UTF-8 character, so a character split across chunks stays in the carried bytes.
 */
export class EventLineReader {
  /** The bytes of a line not yet complete (a copy: the caller may reuse its chunk). */
  private rest: Buffer | null = null;

  /** Parses the complete lines of `chunk` into `out`; throws WORKER_ERROR on garbage. */
  write(chunk: Buffer, out: GenerateEvent[]): void {
    let bytes = chunk;
    if (this.rest) {
      bytes = Buffer.concat([this.rest, chunk]);
      this.rest = null;
    }
    let from = 0;
    let nl = bytes.indexOf(NEWLINE);
    while (nl >= 0) {
      if (nl > from) this.line(bytes, from, nl, out);
      from = nl + 1;
      nl = bytes.indexOf(NEWLINE, from);
    }
    if (from < bytes.length) {
      if (bytes.length - from > MAX_LINE_BYTES) throw new AppError('WORKER_ERROR', `worker sent a line longer than ${MAX_LINE_BYTES} bytes`);
      this.rest = Buffer.from(bytes.subarray(from));
    }
  }

  /** The last line, when the body did not end with a newline. */
  end(out: GenerateEvent[]): void {
    const last = this.rest;
    this.rest = null;
    if (last) this.line(last, 0, last.length, out);
  }

  private line(bytes: Buffer, from: number, to: number, out: GenerateEvent[]): void {
    if (to - from > MAX_LINE_BYTES) throw new AppError('WORKER_ERROR', `worker sent a line longer than ${MAX_LINE_BYTES} bytes`);
    const line = bytes.toString('utf8', from, to);
    if (line.trim() !== '') out.push(parseEvent(line));
  }
}
