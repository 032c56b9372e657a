/**
 * The configuration schemas of the processes in this build, for checking that deployment files
 * (Dockerfile, compose, Helm chart) set only real configuration keys with valid values. The
 * worker's schema is loaded from the build when the worker is part of it.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import { describeConfig, loadConfig } from '../../src/shared/config.js';
import { GATEWAY_CONFIG_PREFIX, GatewayConfigSchema } from '../../src/gateway/config.js';
import { PROJECT_ROOT } from './paths.js';

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

const WORKER_CONFIG_JS = join(PROJECT_ROOT, 'dist/src/worker/config.js');

/** The worker's config, or null when the worker is not part of this build. */
export async function workerConfig(): Promise<ProcessConfig | null> {
  if (!existsSync(WORKER_CONFIG_JS)) return null;
  const mod = (await import(pathToFileURL(WORKER_CONFIG_JS).href)) as { WORKER_CONFIG_PREFIX: string; WorkerConfigSchema: z.ZodObject };
  return processConfig(mod.WORKER_CONFIG_PREFIX, mod.WorkerConfigSchema);
}

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
