/**
 * The configuration schemas of the gateway and the worker, for checking that deployment files
 * (Dockerfile, compose, Helm chart) set only real configuration keys with valid values.
 */
import type { z } from 'zod';
import { describeConfig, loadConfig } from '../../src/shared/config.js';
import { GATEWAY_CONFIG_PREFIX, GatewayConfigSchema } from '../../src/gateway/config.js';
import { WORKER_CONFIG_PREFIX, WorkerConfigSchema } from '../../src/worker/config.js';

export interface ProcessConfig {
  prefix: string;
  schema: z.ZodObject;
  /** Every environment variable the process reads. */
  envNames: Set<string>;
  /** Loads a config from these variables alone (throws ConfigError on a bad one). */
  load(env: Record<string, string>): unknown;
}

function processConfig(prefix: string, schema: z.ZodObject): ProcessConfig {
  return {
    prefix,
    schema,
    envNames: new Set([`${prefix}_CONFIG`, ...describeConfig(schema, prefix).map((r) => r.env)]),
    load: (env) => loadConfig({ prefix, schema, env }),
  };
}

export const GATEWAY = processConfig(GATEWAY_CONFIG_PREFIX, GatewayConfigSchema);

export const WORKER = processConfig(WORKER_CONFIG_PREFIX, WorkerConfigSchema);

/** Checks a set of variables against the process configs: unknown names and values the schema refuses. */
export function configProblems(env: Record<string, string>, configs: ProcessConfig[]): string[] {
  const problems: string[] = [];
  for (const c of configs) {
    const mine = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith(`${c.prefix}_`)));
    for (const k of Object.keys(mine)) if (!c.envNames.has(k)) problems.push(`${k} is not a ${c.prefix} config key`);
    try {
      c.load(mine);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}
