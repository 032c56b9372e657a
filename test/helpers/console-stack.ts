/**
 * What the console's browser test (and the README's screenshot) runs against: a real gateway
 * listening on a loopback port, in front of a real worker process on the simulated engine, with
 * Redis, an API key and the admin token, and the console's knowledge-base fixture.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/gateway/app.js';
import { PROJECT_ROOT } from './paths.js';
import { TEST_KEY, testConfig } from './gateway.js';
import { demoTinyModel, startSimWorker, type TinyModel, type WorkerProcess } from './worker-process.js';

export const CONSOLE_KB = join(PROJECT_ROOT, 'test/fixtures/knowledge-base-console.jsonl');

export interface ConsoleStack {
  gateway: FastifyInstance;
  /** `http://127.0.0.1:<port>` of the gateway */
  url: string;
  worker: WorkerProcess;
  keyPrefix: string;
  /** A chat question through the gateway's API: its status and degraded header. */
  chat(question: string): Promise<{ status: number; degraded: string | null; reason: string | null }>;
  stop(): Promise<void>;
}

export async function startConsoleStack(options: { redisUrl: string; healthIntervalMs?: number }): Promise<ConsoleStack> {
  let model: TinyModel | undefined;
  let worker: WorkerProcess | undefined;
  try {
    model = await demoTinyModel();
    worker = await startSimWorker(model, { ttftMs: 20, itlMs: 5 });
    const keyPrefix = `console-${process.pid}-${Date.now()}:`;
    const gateway = await buildApp(
      testConfig({
        redis: { url: options.redisUrl, keyPrefix },
        workers: { urls: [worker.url], healthIntervalMs: options.healthIntervalMs ?? 1000 },
        knowledgeBase: { path: CONSOLE_KB, minScore: 1 },
        degrade: { refreshMs: 200 },
      }),
    );
    await gateway.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(gateway.server.address() as { port: number }).port}`;
    const theWorker = worker;
    const theModel = model;
    return {
      gateway,
      url,
      worker,
      keyPrefix,
      async chat(question) {
        const res = await fetch(`${url}/v1/chat`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: question }], max_tokens: 8 }),
        });
        await res.arrayBuffer();
        return { status: res.status, degraded: res.headers.get('x-degraded'), reason: res.headers.get('x-degraded-reason') };
      },
      async stop() {
        await gateway.close();
        await theWorker.stop();
        theModel.cleanup();
      },
    };
  } catch (err) {
    await worker?.stop();
    model?.cleanup();
    throw err;
  }
}
