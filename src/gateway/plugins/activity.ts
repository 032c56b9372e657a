/**
 * `app.activity`: the last minute's answers, fallbacks, errors and 429s for /admin/status. Counted
 * from the answer hooks (which worker streamed, the fallback's reason, a failure inside an SSE
 * stream) and from the onError hook, which sees every error the error handler turns into an
 * answer (429s among them, with the tenant that was refused).
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Activity } from '../console/activity.js';
import { toAppError } from '../../shared/http-errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    activity: Activity;
  }
}

async function activityPlugin(app: FastifyInstance): Promise<void> {
  const activity = new Activity();
  app.decorate('activity', activity);
  app.answerHooks.push({ onAnswerEnd: (_ctx, end) => activity.answerEnded(end) });
  // A callback hook, not an async one: an async hook costs a promise per call.
  app.addHook('onError', (request, _reply, error, done) => {
    activity.failed(toAppError(error).code, request.tenant?.tier);
    done();
  });
}

export default fp(activityPlugin, { name: 'activity', fastify: '5.x', dependencies: ['answers'] });
