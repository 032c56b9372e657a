/** `GET /v1/models`: the base model and the adapters the workers serve, behind the API key like the rest of /v1. */
import type { FastifyInstance } from 'fastify';

export default async function modelRoutes(app: FastifyInstance): Promise<void> {
  const { pool } = app;
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
