/**
 * Every error a client can see, as one envelope from one table (src/shared/errors.ts), made by
 * `toAppError` (src/shared/http-errors.ts). Anything else is a 500 and is logged; a client's bad
 * input never lands there.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { AppError, errorEnvelope } from '../../shared/errors.js';
import { toAppError } from '../../shared/http-errors.js';

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
