/**
 * An open-loop load generator for latency at a fixed rate: requests leave on a 1 ms tick (every
 * one due by then) over keep-alive connections, each timed from its own write to the end of its
 * response, with sub-millisecond precision; a slow answer does not delay the next request.
 *
 * Why written here: autocannon's rate sends each second's requests in a burst at the start of
 * the second (it measures the burst, not the server), and an undici client costs enough CPU per
 * request that, at the rates measured on a two-core machine, the generator itself fell tens of
 * milliseconds behind. This one writes prepared bytes to raw sockets and reads just enough of
 * each response (status line, Content-Length or chunked framing) to know where it ends.
 */
import { connect, type Socket } from 'node:net';
import { sleep } from '../src/shared/net.js';

export interface OpenLoopResult {
  /** ms per 2xx response, sorted */
  latencies: number[];
  failed: number;
  /** how far the generator fell behind its schedule at worst, ms */
  lagMs: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');

/** Reads HTTP/1.1 responses off one socket; calls `done(status)` at the end of each. */
class ResponseReader {
  private buf: Buffer = Buffer.alloc(0);
  private status = 0;
  private bodyStart = -1;
  private length = -1; // Content-Length, or -1 for chunked
  private chunkAt = 0; // chunked: where the next chunk-size line starts

  constructor(private readonly done: (status: number) => void) {}

  push(data: Buffer): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    while (this.step());
  }

  /** Consumes one whole response when it is in; false when more bytes are needed. */
  private step(): boolean {
    if (this.bodyStart < 0) {
      const end = this.buf.indexOf(CRLF2);
      if (end < 0) return false;
      const head = this.buf.subarray(0, end).toString('latin1');
      this.status = Number(head.slice(9, 12));
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      this.length = m ? Number(m[1]) : -1;
      this.bodyStart = end + 4;
      this.chunkAt = this.bodyStart;
    }
    let end: number;
    if (this.length >= 0) {
      end = this.bodyStart + this.length;
      if (this.buf.length < end) return false;
    } else {
      for (;;) {
        const nl = this.buf.indexOf('\r\n', this.chunkAt);
        if (nl < 0) return false;
        const size = parseInt(this.buf.subarray(this.chunkAt, nl).toString('latin1'), 16);
        if (size === 0) {
          if (this.buf.length < nl + 4) return false; // the last chunk and the empty trailer
          end = nl + 4;
          break;
        }
        if (this.buf.length < nl + 2 + size + 2) return false;
        this.chunkAt = nl + 2 + size + 2;
      }
    }
    this.buf = this.buf.subarray(end);
    this.bodyStart = -1;
    this.done(this.status);
    return this.buf.length > 0;
  }
}

interface Connection {
  socket: Socket;
  sentAt: number;
  busy: boolean;
}

/** `rate` POSTs per second of `body` to `url` for `seconds`, on up to `connections` sockets. */
export async function openLoop(url: string, headers: Record<string, string>, body: string, rate: number, seconds: number, connections = 256): Promise<OpenLoopResult> {
  const { hostname, port, pathname } = new URL(url);
  const payload = Buffer.from(body);
  const head = [`POST ${pathname} HTTP/1.1`, `host: ${hostname}:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${payload.length}`, '', ''].join('\r\n');
  const request = Buffer.concat([Buffer.from(head), payload]);
  const latencies: number[] = [];
  let failed = 0;
  let finished = 0;
  const total = Math.round(rate * seconds);
  const idle: Connection[] = [];
  const all: Connection[] = [];
  let waiting = 0; // due requests with no idle connection yet
  let opened = 0;

  const send = (c: Connection) => {
    c.busy = true;
    c.sentAt = performance.now();
    c.socket.write(request);
  };
  const open = (): Connection => {
    opened++;
    const c: Connection = { socket: connect(Number(port), hostname), sentAt: 0, busy: false };
    all.push(c);
    c.socket.setNoDelay(true);
    const reader = new ResponseReader((status) => {
      const ms = performance.now() - c.sentAt;
      if (status >= 200 && status < 300) latencies.push(ms);
      else failed++;
      finished++;
      c.busy = false;
      if (waiting > 0) {
        waiting--;
        send(c);
      } else idle.push(c);
    });
    c.socket.on('data', (d: Buffer) => reader.push(d));
    c.socket.on('error', () => {
      if (c.busy) {
        failed++;
        finished++;
      }
      c.busy = false;
    });
    return c;
  };

  // Connections for the expected concurrency are opened first, so no timed request waits on a connect.
  const ready = Array.from({ length: Math.min(connections, Math.max(8, Math.ceil(rate / 200))) }, open);
  await Promise.all(ready.map((c) => new Promise((r) => c.socket.once('connect', r))));
  idle.push(...ready);

  const start = performance.now();
  let sent = 0;
  let lagMs = 0;
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1);
    if (due > sent) lagMs = Math.max(lagMs, now - (start + (sent / rate) * 1000));
    for (; sent < due; sent++) {
      const c = idle.pop() ?? (opened < connections ? open() : undefined);
      if (c) send(c);
      else waiting++;
    }
    await sleep(1);
  }
  const deadline = performance.now() + 30_000;
  while (finished < total && performance.now() < deadline) await sleep(2);
  failed += total - finished;
  for (const c of all) c.socket.destroy();
  latencies.sort((a, b) => a - b);
  return { latencies, failed, lagMs };
}
