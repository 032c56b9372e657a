/** Operational routes: liveness, readiness, metrics, and the model list. */
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../app.js';

export async function opsRoutes(app: FastifyInstance, gw: Gateway): Promise<void> {
  const { pool, degrade, answerer, metrics } = gw;

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

/** `GET /v1/models`, behind the API key like the rest of /v1. */
export async function modelRoutes(app: FastifyInstance, gw: Gateway): Promise<void> {
  const { pool } = gw;
  app.get('/v1/models', { schema: { summary: 'The base model and the LoRA adapters', tags: ['openai'] } }, async () => {
    const { bases, adapters } = pool.listModels();
    return {
      object: 'list',
      data: [
        ...bases.map((id) => ({ id, object: 'model', created: 0, owned_by: 'glm-legal-serve' })),
        ...adapters.map((a) => ({ id: a.name, object: 'model', created: 0, owned_by: 'glm-legal-serve', parent: a.base, root: a.base })),
      ],
    };
  });
}
