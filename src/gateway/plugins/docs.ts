/** The OpenAPI document (`/docs/json`) made from the routes' zod schemas, and its page at `/docs`. */
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

async function docsPlugin(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      info: { title: 'glm-legal-serve gateway', version: '0.1.0', description: 'Legal-assistant chat API (ChatGLM3 + LoRA), OpenAI-compatible' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
}

export default fp(docsPlugin, { name: 'docs', fastify: '5.x' });
