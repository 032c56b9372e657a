/**
 * Any error a Fastify app of ours meets, as an AppError (src/shared/errors.ts): Fastify's own
 * errors for bad requests (body too large, wrong content type, bad JSON), zod validation failures
 * with the field at fault, and our AppErrors as they are. Anything else is INTERNAL. The gateway
 * and the worker answer with the envelope of what this returns.
 */
import type { FastifyError } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError } from './errors.js';

const FASTIFY_CODES: Record<string, AppError['code']> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_JSON_BODY: 'INVALID_JSON',
  FST_ERR_CTP_INVALID_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

/** `/messages/0/content` → `messages.0.content`. */
function paramFromPointer(pointer: string): string | null {
  const p = pointer.replace(/^\//, '').split('/').filter((s) => s !== '').join('.');
  return p === '' ? null : p;
}

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const issue = err.validation[0]!;
    const keys = (issue.params as { keys?: unknown }).keys;
    // An unknown field is reported at its parent; name the field itself.
    const unknown = issue.keyword === 'unrecognized_keys' && Array.isArray(keys) && typeof keys[0] === 'string' ? keys[0] : null;
    const base = paramFromPointer(issue.instancePath);
    const param = unknown ? (base ? `${base}.${unknown}` : unknown) : base;
    const message = unknown ? `unknown field ${param}` : `${param ?? 'body'}: ${issue.message}`;
    return new AppError('INVALID_REQUEST', message, { param });
  }
  const fe = err as Partial<FastifyError>;
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new AppError(mapped, fe.message ?? mapped);
  if (err instanceof SyntaxError || fe.statusCode === 400) return new AppError('INVALID_JSON', fe.message ?? 'invalid JSON body');
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new AppError(fe.statusCode === 404 ? 'NOT_FOUND' : fe.statusCode === 405 ? 'METHOD_NOT_ALLOWED' : 'INVALID_REQUEST', fe.message ?? 'bad request');
  }
  return new AppError('INTERNAL', 'internal error', { cause: err });
}
