/**
 * The worker's answer on the wire: NDJSON, one event per line, flushed as produced. The worker
 * writes lines with `ndjsonLine`; the gateway reads them with `EventLineReader`, which parses each
 * chunk where it lands (lines and characters may be split across chunks) and fails with
 * WORKER_ERROR on anything that is not an event of the protocol.
 */
import { StringDecoder } from 'node:string_decoder';
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

/** Splits a byte stream into NDJSON events. */
export class EventLineReader {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';

  /** Parses the complete lines of `chunk` into `out`; throws WORKER_ERROR on garbage. */
  write(chunk: Buffer, out: GenerateEvent[]): void {
    const text = this.rest + this.decoder.write(chunk);
    let from = 0;
    let nl = text.indexOf('\n');
    while (nl >= 0) {
      if (nl > from) this.line(text.slice(from, nl), out);
      from = nl + 1;
      nl = text.indexOf('\n', from);
    }
    this.rest = from === 0 ? text : text.slice(from);
  }

  /** The last line, when the body did not end with a newline. */
  end(out: GenerateEvent[]): void {
    const last = this.rest + this.decoder.end();
    this.rest = '';
    this.line(last, out);
  }

  private line(line: string, out: GenerateEvent[]): void {
    if (line.trim() !== '') out.push(parseEvent(line));
  }
}
