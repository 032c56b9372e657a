/** The abort helpers: a child signal per call keeps a long-lived signal's listeners bounded. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { sleep, withChildSignal } from '../../../src/shared/net.js';

test('withChildSignal: listeners a call leaves on its signal do not pile up on the parent', async () => {
  const parent = new AbortController();
  for (let i = 0; i < 50; i++) {
    // A client that adds a listener per call and never removes it.
    await withChildSignal(parent.signal, async (signal) => signal!.addEventListener('abort', () => undefined));
  }
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0);
  await assert.rejects(
    withChildSignal(parent.signal, async () => {
      throw new Error('the call failed');
    }),
    /the call failed/,
  );
  assert.equal(getEventListeners(parent.signal, 'abort').length, 0, 'unhooked after a failure too');
});

test('withChildSignal: aborting the parent aborts the call in progress, with its reason; no signal passes none', async () => {
  const parent = new AbortController();
  const running = withChildSignal(parent.signal, (signal) => sleep(10_000, signal));
  parent.abort(new Error('stopped by the user'));
  await assert.rejects(running, /stopped by the user/);
  await assert.rejects(withChildSignal(parent.signal, (signal) => sleep(10_000, signal)), /stopped by the user/, 'an aborted parent aborts at once');
  assert.equal(await withChildSignal(undefined, async (signal) => signal), undefined);
});
