/** Starts the fake worker (test/helpers/fake-worker.ts) as a real process and scripts it. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FakeScript } from './fake-worker.js';

export const FAKE_WORKER_JS = join(fileURLToPath(new URL('.', import.meta.url)), 'fake-worker.js');

export interface FakeWorker {
  port: number;
  url: string;
  child: ChildProcess;
  script(s: Partial<FakeScript>): Promise<void>;
  stats(): Promise<{ pid: number; requests: number; cancelled: number; completed: number; active: number; last: Record<string, unknown> | null }>;
  stop(): Promise<void>;
}

export async function startFakeWorker(script: Partial<FakeScript> = {}, port = 0): Promise<FakeWorker> {
  const child = spawn(process.execPath, [FAKE_WORKER_JS, '--port', String(port)], {
    env: { ...process.env, FAKE_WORKER_SCRIPT: JSON.stringify(script) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const actual = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /fake-worker listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`fake worker exited with ${code} before listening`)));
  });
  const url = `http://127.0.0.1:${actual}`;
  return {
    port: actual,
    url,
    child,
    async script(s) {
      const res = await fetch(`${url}/_script`, { method: 'POST', body: JSON.stringify(s) });
      if (res.status !== 200) throw new Error(`script failed: ${res.status}`);
      await res.text();
    },
    async stats() {
      const res = await fetch(`${url}/_stats`);
      return (await res.json()) as Awaited<ReturnType<FakeWorker['stats']>>;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}
