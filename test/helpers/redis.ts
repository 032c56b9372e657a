/**
 * A private redis-server for tests that need isolation or must stop and restart Redis.
 * It keeps nothing on disk and listens on loopback only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { freePort, sleep } from '../../src/shared/net.js';

export interface PrivateRedis {
  port: number;
  url: string;
  /** Stops the server (SIGKILL unless `graceful`); the port stays reserved for `start()`. */
  stop(graceful?: boolean): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

/** The process id of the redis-server answering on `port`, or null when none answers. */
function serverPid(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let answer = '';
    socket.setTimeout(500);
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (d) => {
      answer += d.toString();
      const m = /process_id:(\d+)\r\n/.exec(answer);
      if (m || answer.startsWith('-')) {
        socket.destroy();
        resolve(m ? Number(m[1]) : null);
      }
    });
    socket.on('error', () => resolve(null));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(null);
    });
  });
}

class PortTaken extends Error {}

/**
 * @param port a fixed port; by default a free one (chosen again if another server takes it first)
 * @param extraArgs more redis-server arguments (`['--cluster-enabled', 'yes', ...]`)
 */
export async function startPrivateRedis(port?: number, extraArgs: string[] = []): Promise<PrivateRedis> {
  let p = port ?? (await freePort());
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...extraArgs],
      { stdio: 'ignore' },
    );
    const started = child;
    let failed: Error | undefined;
    started.once('error', (err) => (failed = err));
    for (let i = 0; i < 100; i++) {
      if (failed) throw new Error(`redis-server could not start: ${failed.message}`);
      const pid = await serverPid(p);
      if (pid !== null && pid === started.pid) return;
      // Another server answers on the port (tests of other runs share the machine): ours could not bind.
      if (pid !== null && started.exitCode !== null) throw new PortTaken(`port ${p} is taken by another redis-server`);
      await sleep(50);
    }
    throw new Error(`redis-server on port ${p} did not answer`);
  };

  const stop = async (graceful = false) => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill(graceful ? 'SIGTERM' : 'SIGKILL');
    await exited;
  };

  for (let attempt = 1; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      if (!(err instanceof PortTaken) || port !== undefined || attempt === 3) throw err;
      p = await freePort();
    }
  }
  return { port: p, url: `redis://127.0.0.1:${p}`, stop, start };
}
