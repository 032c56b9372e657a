/** Admin routes behind the bearer admin token: the degrade switch and the worker pool. */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { DEGRADE_MODES, DEGRADE_SOURCES } from '../config.js';
import { UpdatedBySchema } from '../fallback/degrade.js';

/** Who set the switch when the request does not say. */
const ADMIN_API = 'admin-api';

const DegradeBody = z
  .object({
    mode: z.enum(DEGRADE_MODES),
    /** Absent: keep the source in force. */
    source: z.enum(DEGRADE_SOURCES).optional(),
    /** Who is setting it (kept with the switch in Redis); absent: `admin-api`. */
    updated_by: UpdatedBySchema.optional(),
  })
  .strict();

export default async function adminRoutes(app: FastifyInstance): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { degrade, pool, breaker, answerer } = app;

  r.addHook('onRequest', app.requireAdmin);

  r.get('/admin/degrade', { schema: { summary: 'The degrade switch', tags: ['admin'] } }, async () => ({
    ...degrade.state,
    store: degrade.store,
  }));

  r.put('/admin/degrade', { schema: { body: DegradeBody, summary: 'Set the degrade switch on every replica', tags: ['admin'] } }, async (request) => {
    const { mode, source = degrade.state.source, updated_by: by = ADMIN_API } = request.body;
    const { state, stored } = await degrade.set({ mode, source }, by);
    request.log.info({ mode: state.mode, source: state.source, by, stored }, 'degrade switch set through the admin API');
    return {
      ...state,
      store: stored,
      ...(stored === 'memory' ? { warning: 'Redis is unreachable: the change applies to this replica only until Redis is back' } : {}),
    };
  });

  r.get('/admin/workers', { schema: { summary: 'Workers, their health and load', tags: ['admin'] } }, async () => ({
    breaker: breaker.state,
    in_progress: answerer.inProgress,
    workers: pool.snapshot(),
  }));
}
