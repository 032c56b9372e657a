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

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let answer = '';
    socket.setTimeout(500);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      answer += d.toString();
      if (answer.includes('\r\n')) {
        socket.destroy();
        resolve(answer.startsWith('+PONG'));
      }
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/** @param extraArgs more redis-server arguments (`['--cluster-enabled', 'yes', ...]`) */
export async function startPrivateRedis(port?: number, extraArgs: string[] = []): Promise<PrivateRedis> {
  const p = port ?? (await freePort());
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
      if (await ping(p)) return;
      await sleep(50);
    }
    throw new Error(`redis-server on port ${p} did not answer PING`);
  };

  const stop = async (graceful = false) => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    const exited = new Promise((resolve) => c.once('exit', resolve));
    c.kill(graceful ? 'SIGTERM' : 'SIGKILL');
    await exited;
  };

  await start();
  return { port: p, url: `redis://127.0.0.1:${p}`, stop, start };
}
