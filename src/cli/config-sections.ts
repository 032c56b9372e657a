/** Every process's configuration schema, for `npm run config-docs` and the test that keeps the README true. */
import type { z } from 'zod';
import { GATEWAY_CONFIG_PREFIX, GatewayConfigSchema } from '../gateway/config.js';
import { WORKER_CONFIG_PREFIX, WorkerConfigSchema } from '../worker/config.js';

export const CONFIG_SECTIONS: ReadonlyArray<{ title: string; prefix: string; schema: z.ZodObject }> = [
  { title: 'Gateway', prefix: GATEWAY_CONFIG_PREFIX, schema: GatewayConfigSchema },
  { title: 'Worker', prefix: WORKER_CONFIG_PREFIX, schema: WorkerConfigSchema },
];
