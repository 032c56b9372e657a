/** Operational routes: liveness, readiness and metrics (no API key). */
import type { FastifyInstance } from 'fastify';

export default async function opsRoutes(app: FastifyInstance): Promise<void> {
  const { pool, degrade, answerer, metrics } = app;

  app.get('/healthz', { schema: { summary: 'The process is alive', tags: ['ops'] } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { summary: 'Ready when a worker is healthy or the fallback can answer', tags: ['ops'] } }, async (_request, reply) => {
    const healthy = pool.healthyCount();
    const mode = degrade.state.mode;
    const ready = !answerer.isDraining && (healthy > 0 || mode !== 'off');
    return reply.status(ready ? 200 : 503).send({
      ready,
      draining: answerer.isDraining,
      healthy_workers: healthy,
      workers: pool.size,
      degrade_mode: mode,
    });
  });

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['ops'] } }, async (_request, reply) => {
    const text = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });
}
