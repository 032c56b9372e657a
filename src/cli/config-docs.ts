/** `npm run config-docs`: prints the README's configuration tables from the schemas. */
import type { z } from 'zod';
import { configTable } from '../shared/config.js';
import { GATEWAY_CONFIG_PREFIX, GatewayConfigSchema } from '../gateway/config.js';
import { WORKER_CONFIG_PREFIX, WorkerConfigSchema } from '../worker/config.js';

const sections: Array<[title: string, prefix: string, schema: z.ZodObject]> = [
  ['Gateway', GATEWAY_CONFIG_PREFIX, GatewayConfigSchema],
  ['Worker', WORKER_CONFIG_PREFIX, WorkerConfigSchema],
];

for (const [title, prefix, schema] of sections) console.log(`### ${title} (\`${prefix}_*\`)\n\n${configTable(schema, prefix)}\n`);
