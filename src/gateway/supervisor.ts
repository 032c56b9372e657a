/**
 * The local worker supervisor behind `npm start`: runs N worker processes on free loopback
 * ports and keeps them running.
 *
 * Algorithm: each slot spawns `command args` with its port in env `WORKER_PORT` (and
 * `WORKER_HOST`, and its index as `WORKER_DEVICE_DEVICE_ID`); the slot's URL is announced through `onChange` so the pool health-checks it.
 * A worker that exits while the supervisor is running is restarted after a backoff that starts
 * at `restartMinMs` and doubles per consecutive crash up to `restartMaxMs`; a worker that stayed
 * up `stableMs` starts the count over. Each restart takes a fresh free port (the old one may be
 * taken by then) and announces the new URL. `stop()` sends SIGTERM to every worker, SIGKILL to
 * those still alive after `stopTimeoutMs`, and resolves when all have exited.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Logger } from '../shared/logging.js';
import { freePort } from '../shared/net.js';

export interface SupervisorOptions {
  count: number;
  command: string;
  args: string[];
  host: string;
  /** Extra environment for every worker. */
  env?: NodeJS.ProcessEnv;
  restartMinMs: number;
  restartMaxMs: number;
  stableMs: number;
  stopTimeoutMs: number;
  stdio?: StdioOptions;
  /** Called with the worker URLs whenever they change. */
  onChange(urls: string[]): void;
  log: Logger;
  /** Counts restarts (metrics). */
  onRestart?(): void;
}

interface Slot {
  index: number;
  child: ChildProcess | null;
  url: string | null;
  startedAt: number;
  crashes: number;
  timer: NodeJS.Timeout | undefined;
}

/** Restart delay after `crashes` consecutive crashes (1 = the first). */
export function restartDelay(crashes: number, minMs: number, maxMs: number): number {
  return Math.min(minMs * 2 ** Math.max(0, crashes - 1), maxMs);
}

export class Supervisor {
  private readonly slots: Slot[] = [];
  private stopping = false;
  restarts = 0;

  constructor(private readonly options: SupervisorOptions) {
    for (let i = 0; i < options.count; i++) {
      this.slots.push({ index: i, child: null, url: null, startedAt: 0, crashes: 0, timer: undefined });
    }
  }

  urls(): string[] {
    return this.slots.flatMap((s) => (s.url ? [s.url] : []));
  }

  /** Process ids of the running workers (for tests and the admin view). */
  pids(): number[] {
    return this.slots.flatMap((s) => (s.child?.pid !== undefined && s.child.exitCode === null ? [s.child.pid] : []));
  }

  async start(): Promise<void> {
    await Promise.all(this.slots.map((s) => this.spawn(s)));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const waits: Promise<void>[] = [];
    for (const s of this.slots) {
      clearTimeout(s.timer);
      const child = s.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      waits.push(
        new Promise<void>((resolve) => {
          const kill = setTimeout(() => child.kill('SIGKILL'), this.options.stopTimeoutMs);
          child.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          child.kill('SIGTERM');
        }),
      );
    }
    await Promise.all(waits);
  }

  private async spawn(slot: Slot): Promise<void> {
    if (this.stopping) return;
    const { host } = this.options;
    const port = await freePort(host);
    const child = spawn(this.options.command, this.options.args, {
      // One device per worker: a worker's index is its GPU index (ignored on CPU).
      env: { ...process.env, WORKER_DEVICE_DEVICE_ID: String(slot.index), ...this.options.env, WORKER_PORT: String(port), WORKER_HOST: host },
      stdio: this.options.stdio ?? 'inherit',
    });
    slot.child = child;
    slot.startedAt = Date.now();
    slot.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.options.log.info({ worker: slot.index, pid: child.pid, url: slot.url }, 'worker started');
    this.options.onChange(this.urls());
    child.once('error', (err) => {
      // spawn failed (command missing): reported here, then handled as an exit.
      this.options.log.warn({ worker: slot.index, err: err.message }, 'worker could not start');
    });
    child.once('close', (code, signal) => this.exited(slot, child, code, signal));
  }

  private exited(slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (slot.child !== child) return;
    slot.child = null;
    slot.url = null;
    if (this.stopping) return;
    this.options.onChange(this.urls());
    if (Date.now() - slot.startedAt >= this.options.stableMs) slot.crashes = 0;
    slot.crashes++;
    const delay = restartDelay(slot.crashes, this.options.restartMinMs, this.options.restartMaxMs);
    this.options.log.warn({ worker: slot.index, code, signal, restartInMs: delay }, 'worker exited; restarting');
    slot.timer = setTimeout(() => {
      this.restarts++;
      this.options.onRestart?.();
      void this.spawn(slot);
    }, delay);
  }
}
