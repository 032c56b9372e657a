/**
 * A non-streamed answer's body as JSON text. The common answer — plain text, no logprobs, tool
 * calls, degradation or knowledge sources — has one fixed shape per format, which the format
 * describes as a zod schema (`plainBody`); fast-json-stringify, compiled once from that schema's
 * JSON Schema, writes it in under half of JSON.stringify's time (`npm run bench:validation`),
 * byte for byte the same text (test/unit/gateway/answer/body-json.test.ts). Every other answer is
 * written by JSON.stringify.
 */
import fastJson from 'fast-json-stringify';
import { z } from 'zod';
import type { AnswerFormat, AnswerMeta, AnswerResult } from './formats.js';

const writers = new WeakMap<AnswerFormat, (body: unknown) => string>();

function writerOf(format: AnswerFormat): (body: unknown) => string {
  let write = writers.get(format);
  if (!write) {
    write = fastJson(z.toJSONSchema(format.plainBody, { target: 'draft-7', io: 'output', unrepresentable: 'throw' }) as never) as (body: unknown) => string;
    writers.set(format, write);
  }
  return write;
}

/** Whether the answer has the format's plain shape. */
export function isPlainAnswer(meta: AnswerMeta, result: AnswerResult): boolean {
  return !meta.degraded && meta.sources === null && !meta.logprobs && !(result.toolCalls && result.toolCalls.length > 0);
}

/** The body of `format.body(meta, result)` as JSON text. */
export function answerJson(format: AnswerFormat, meta: AnswerMeta, result: AnswerResult): string {
  const body = format.body(meta, result);
  return isPlainAnswer(meta, result) ? writerOf(format)(body) : JSON.stringify(body);
}
