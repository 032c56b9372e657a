/** Checks that bad configuration values stop loading the way operators need to read them. */
import assert from 'node:assert/strict';
import type { z } from 'zod';
import { ConfigError, loadConfig } from '../../src/shared/config.js';

/**
 * Each environment must make loading throw a ConfigError whose message is one line (it is what
 * start-up prints) and matches its pattern (the variable at fault, and what was wrong).
 */
export function assertConfigRefuses(prefix: string, schema: z.ZodObject, cases: readonly [Record<string, string>, RegExp][]): void {
  for (const [env, expected] of cases) {
    assert.throws(
      () => loadConfig({ prefix, schema, env }),
      (err: unknown) => err instanceof ConfigError && expected.test(err.message) && !err.message.includes('\n'),
      JSON.stringify(env),
    );
  }
}
