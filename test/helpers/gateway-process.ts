/** Runs the real gateway CLI (`dist/src/cli/gateway.js`) as a process on a free loopback port. */
import { join } from 'node:path';
import { startNode, type NodeProcess } from './node-process.js';
import { CLI_DIR, PROJECT_ROOT } from './paths.js';

export type GatewayProcess = NodeProcess;

/** Starts the gateway with `env` (GATEWAY_* variables) and node's `nodeArgs`, and waits until /healthz answers. */
export function startGatewayProcess(env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<GatewayProcess> {
  // 30 s to answer: several gateways starting at once on a busy two-core machine take a while.
  return startNode(join(CLI_DIR, 'gateway.js'), {
    env: { ...process.env, GATEWAY_HOST: '127.0.0.1', GATEWAY_LOG_LEVEL: 'warn', ...env },
    portEnv: 'GATEWAY_PORT',
    cwd: PROJECT_ROOT,
    nodeArgs,
  });
}
