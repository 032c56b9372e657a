/** A gateway as a real process (`node dist/src/cli/gateway.js`), configured by environment. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { freePort, sleep } from '../../src/shared/net.js';
import { CLI_DIR } from './paths.js';

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export async function startGatewayProcess(env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort();
  let output = '';
  const child = spawn(process.execPath, [join(CLI_DIR, 'gateway.js')], {
    env: { ...process.env, GATEWAY_PORT: String(port), GATEWAY_LOG_LEVEL: 'warn', GATEWAY_DRAIN_TIMEOUT_MS: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://127.0.0.1:${port}`;
  const stop = async (graceMs = 5000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`gateway exited with ${child.exitCode}: ${output}`);
    try {
      const res = await fetch(`${url}/healthz`);
      await res.text();
      if (res.status === 200) return { url, child, output: () => output, stop };
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  await stop();
  throw new Error(`gateway did not answer /healthz: ${output}`);
}
