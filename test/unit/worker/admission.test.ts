/**
 * Admission policies against the properties of the Virtual Token Counter (Sheng et al., OSDI
 * 2024): work conservation (a lone tenant gets everything), bounded counter differences between
 * backlogged tenants (so shares follow the weights), no credit banked while idle, no starvation;
 * and first come first served for `fcfs`. A small simulated server admits into a fixed number of
 * slots and generates one token per running request per step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FcfsQueue, VtcQueue, type AdmissionQueue } from '../../../src/worker/admission.js';

interface Req {
  id: string;
  tenant: string;
  tier?: string;
  prompt: number;
  output: number;
  left?: number;
}

class Server {
  running: Req[] = [];
  admitted: Req[] = [];
  served = new Map<string, number>();
  /** Requests running in the last step, after its admissions. */
  busy = 0;
  constructor(
    readonly queue: AdmissionQueue<Req>,
    readonly slots: number,
  ) {}
  submit(r: Req): void {
    this.queue.push(r, { tenant: r.tenant, tier: r.tier });
  }
  step(): void {
    while (this.running.length < this.slots && this.queue.length > 0) {
      const r = this.queue.peek()!;
      this.queue.admit(r, r.prompt);
      r.left = r.output;
      this.running.push(r);
      this.admitted.push(r);
      this.add(r.tenant, r.prompt);
    }
    this.busy = this.running.length;
    for (const r of [...this.running]) {
      this.queue.served(r, 1);
      this.add(r.tenant, 2);
      if (--r.left! === 0) {
        this.queue.finished(r);
        this.running.splice(this.running.indexOf(r), 1);
      }
    }
  }
  private add(tenant: string, n: number): void {
    this.served.set(tenant, (this.served.get(tenant) ?? 0) + n);
  }
}

const flood = (tenant: string, n: number, prompt = 64, output = 64, tier?: string): Req[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${tenant}${i}`, tenant, prompt, output, ...(tier ? { tier } : {}) }));

test('a lone tenant gets the whole worker, in arrival order', () => {
  const server = new Server(new VtcQueue<Req>({ tierWeights: {} }), 4);
  const reqs = flood('a', 20, 10, 5);
  reqs.forEach((r) => server.submit(r));
  let steps = 0;
  while (server.admitted.length < 20) {
    server.step();
    steps++;
    assert.ok(server.busy === 4 || server.queue.length === 0, 'no slot is left free while it waits');
  }
  assert.deepEqual(server.admitted.map((r) => r.id), reqs.map((r) => r.id));
  assert.ok(steps <= 5 * 5, `took ${steps} steps`);
});

test('two backlogged tenants of equal weight: counters stay within a bound of each other, service is split evenly', () => {
  const queue = new VtcQueue<Req>({ tierWeights: {} });
  const server = new Server(queue, 4);
  // Different shapes: a sends long prompts and short answers, b the opposite.
  flood('a', 200, 200, 10).forEach((r) => server.submit(r));
  flood('b', 200, 10, 100).forEach((r) => server.submit(r));
  // Once admitted, a request goes on charging its tenant until it ends: the lagging tenant is the
  // one admitted next, so the gap is at most what the running requests have still to charge (one
  // whole request per slot) plus one admission. A request costs at most 200 + 2·10 (a) or 10 + 2·100 (b).
  const bound = (4 + 1) * 220;
  for (let s = 0; s < 1000; s++) {
    server.step();
    assert.ok(Math.abs(queue.counter('a') - queue.counter('b')) <= bound, `step ${s}: a ${queue.counter('a')} b ${queue.counter('b')}`);
  }
  const a = server.served.get('a')!;
  const b = server.served.get('b')!;
  assert.ok(Math.abs(a - b) / (a + b) < 0.1, `a got ${a}, b got ${b}`);
});

test('tier weights divide the service: weight 2 gets about twice weight 1 while both wait', () => {
  const server = new Server(new VtcQueue<Req>({ tierWeights: { pro: 2, free: 1 } }), 4);
  flood('p', 300, 32, 32, 'pro').forEach((r) => server.submit(r));
  flood('f', 300, 32, 32, 'free').forEach((r) => server.submit(r));
  for (let s = 0; s < 600; s++) server.step();
  const ratio = server.served.get('p')! / server.served.get('f')!;
  assert.ok(ratio > 1.8 && ratio < 2.2, `pro/free service ${ratio}`);
});

test('an idle tenant banks no credit: arriving after a long absence it shares, it does not shut the others out', () => {
  const queue = new VtcQueue<Req>({ tierWeights: {} });
  const server = new Server(queue, 2);
  flood('b', 400, 16, 16).forEach((r) => server.submit(r));
  for (let s = 0; s < 500; s++) server.step();
  const before = server.admitted.length;
  // a was idle all along (counter 0); it arrives with a flood of its own.
  flood('a', 100, 16, 16).forEach((r) => server.submit(r));
  assert.ok(queue.counter('a') >= queue.counter('b') - 16 * 2 * 2 - 16, `a lifted to ${queue.counter('a')}, b at ${queue.counter('b')}`);
  for (let s = 0; s < 200; s++) server.step();
  const next = server.admitted.slice(before).map((r) => r.tenant);
  const bs = next.filter((t) => t === 'b').length;
  const as = next.filter((t) => t === 'a').length;
  assert.ok(as > 0 && bs > 0 && Math.abs(as - bs) <= 2, `after a arrived: a ${as}, b ${bs} admissions`);
});

test('no starvation: a light tenant arriving behind a flood is admitted within two admissions', () => {
  const server = new Server(new VtcQueue<Req>({ tierWeights: {} }), 4);
  flood('heavy', 24, 64, 64).forEach((r) => server.submit(r));
  server.step();
  server.step();
  const at = server.admitted.length;
  server.submit({ id: 'light', tenant: 'light', prompt: 16, output: 8 });
  while (!server.admitted.some((r) => r.id === 'light')) server.step();
  const position = server.admitted.findIndex((r) => r.id === 'light') - at;
  assert.ok(position <= 1, `light was admission ${position} after it arrived`);
  // First come first served keeps it behind the whole flood.
  const fcfs = new Server(new FcfsQueue<Req>(), 4);
  flood('heavy', 24, 64, 64).forEach((r) => fcfs.submit(r));
  fcfs.step();
  fcfs.step();
  fcfs.submit({ id: 'light', tenant: 'light', prompt: 16, output: 8 });
  while (!fcfs.admitted.some((r) => r.id === 'light')) fcfs.step();
  assert.equal(fcfs.admitted.findIndex((r) => r.id === 'light'), 24);
});

test('requests removed while waiting leave no trace; requests without tenant share one; idle tenants are forgotten past the bound', () => {
  const queue = new VtcQueue<Req>({ tierWeights: {}, maxIdleTenants: 8 });
  const a = { id: 'a', tenant: 'a', prompt: 5, output: 1 };
  queue.push(a, { tenant: 'a' });
  queue.remove(a);
  assert.equal(queue.length, 0);
  assert.equal(queue.peek(), undefined);
  const x = { id: 'x', tenant: '', prompt: 5, output: 1 };
  const y = { id: 'y', tenant: '', prompt: 5, output: 1 };
  queue.push(x, {});
  queue.push(y, {});
  queue.admit(queue.peek()!, 5);
  assert.equal(queue.counter(undefined), 5);
  assert.deepEqual(queue.items(), [y]);
  queue.admit(y, 5);
  for (let i = 0; i < 50; i++) {
    const r = { id: `t${i}`, tenant: `t${i}`, prompt: 1, output: 1 };
    queue.push(r, { tenant: r.tenant });
    queue.admit(r, 1);
    queue.finished(r);
  }
  assert.ok((queue as unknown as { tenants: Map<string, unknown> }).tenants.size <= 9, 'the idle tenants were forgotten');
  assert.equal(queue.weightOf('unknown'), 1);
  assert.equal(queue.weightOf(undefined), 1);
});

test('first come first served admits in arrival order whatever the tenants', () => {
  const queue = new FcfsQueue<Req>();
  const reqs = [...flood('a', 3), ...flood('b', 2)];
  reqs.forEach((r) => queue.push(r));
  const order: string[] = [];
  while (queue.length) {
    const r = queue.peek()!;
    queue.admit(r);
    order.push(r.id);
  }
  assert.deepEqual(order, reqs.map((r) => r.id));
});
