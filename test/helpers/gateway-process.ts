/** Runs the real gateway CLI (`dist/src/cli/gateway.js`) as a process on a free loopback port. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { freePort, sleep } from '../../src/shared/net.js';
import { CLI_DIR, PROJECT_ROOT } from './paths.js';

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts the gateway with `env` (GATEWAY_* variables) and node's `nodeArgs`, and waits until /healthz answers. */
export async function startGatewayProcess(env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<GatewayProcess> {
  const port = await freePort();
  let stderr = '';
  const child = spawn(process.execPath, [...nodeArgs, join(CLI_DIR, 'gateway.js')], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, GATEWAY_HOST: '127.0.0.1', GATEWAY_PORT: String(port), GATEWAY_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  // Up to 30 s: several gateways starting at once on a busy two-core machine take a while.
  for (let i = 0; i < 600; i++) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${stderr}`);
    try {
      const res = await fetch(`${url}/healthz`);
      await res.text();
      if (res.ok) return { url, child, stop };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  await stop();
  throw new Error(`gateway did not answer /healthz: ${stderr}`);
}
