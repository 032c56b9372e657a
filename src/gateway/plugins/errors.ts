/**
 * Every error a client can see, as one envelope from one table (src/shared/errors.ts): Fastify's
 * own errors (body too large, wrong content type, bad JSON), zod validation failures with the
 * field at fault, and our AppErrors. Anything else is a 500 and is logged; a client's bad input
 * never lands there.
 */
import fp from 'fastify-plugin';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { AppError, errorEnvelope } from '../../shared/errors.js';

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

/**
 * The plugin: the error and not-found handlers for the whole app (wrapped with fastify-plugin, so
 * they are the root's), and JSON as the only body type (anything else is a 415, not a string body
 * that fails validation).
 */
async function errorsPlugin(app: FastifyInstance): Promise<void> {
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err, request, reply) => {
    const e = toAppError(err);
    // A bug is an error; an unavailable service (open breaker, fallback off) is expected and
    // would flood the log at error level, so it is a warning.
    if (e.code === 'INTERNAL') request.log.error({ err }, 'request failed');
    else if (e.status >= 500) request.log.warn({ code: e.code, reason: e.message }, 'request failed');
    if (e.retryAfter !== undefined) reply.header('retry-after', String(e.retryAfter));
    // In the gateway NOT_READY means shutting down: the client should reconnect elsewhere.
    if (e.code === 'NOT_READY') reply.header('connection', 'close');
    return reply.status(e.status).send(errorEnvelope(e));
  });
  app.setNotFoundHandler((request, reply) => {
    const e = new AppError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`);
    return reply.status(e.status).send(errorEnvelope(e));
  });
}

export default fp(errorsPlugin, { name: 'errors', fastify: '5.x' });
