/**
 * A script of ours run by this Node as a real process on a free loopback port: the gateway, `npm
 * start`, the benchmarks' fake worker and bare proxy. Its output is kept for failure messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort, sleep } from '../../src/shared/net.js';

export interface NodeProcess {
  /** `http://127.0.0.1:<port>` */
  url: string;
  child: ChildProcess;
  /** stdout and stderr so far */
  output(): string;
  /** Resolves with the exit code (null after a signal) when the process exits. */
  exited: Promise<number | null>;
  /** SIGTERM, SIGKILL after `killAfterMs`; resolves with the exit code. */
  stop(killAfterMs?: number): Promise<number | null>;
}

export interface NodeProcessOptions {
  /** the whole environment; the port is added under `portEnv` */
  env: NodeJS.ProcessEnv;
  portEnv: string;
  cwd?: string;
  nodeArgs?: string[];
  /** a fixed port (a process started again where it was); by default a free one */
  port?: number;
}

/** Starts `script` and returns at once. */
export async function spawnNode(script: string, options: NodeProcessOptions): Promise<NodeProcess> {
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), script], {
    cwd: options.cwd,
    env: { ...options.env, [options.portEnv]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (killAfterMs = 10_000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  };
  return { url: `http://127.0.0.1:${port}`, child, output: () => out, exited, stop };
}

/** Starts `script` and waits (up to `timeoutMs`) until `GET readyPath` answers 2xx. */
export async function startNode(script: string, options: NodeProcessOptions, readyPath = '/healthz', timeoutMs = 30_000): Promise<NodeProcess> {
  const p = await spawnNode(script, options);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (p.child.exitCode !== null) throw new Error(`${script} exited with ${p.child.exitCode}: ${p.output()}`);
    try {
      const res = await fetch(`${p.url}${readyPath}`);
      await res.arrayBuffer();
      if (res.ok) return p;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  await p.stop(0);
  throw new Error(`${script} did not answer ${readyPath}: ${p.output()}`);
}
