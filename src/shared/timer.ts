/**
 * One repeating timer for every periodic task (health checks, DNS, the degrade flag's re-read,
 * the tokenizer fetch, refund flushes): the next run starts `ms` after the previous one has
 * finished, so a slow run never overlaps the next, and the timer never keeps the process alive.
 */
export interface Repeating {
  /** No run starts after this; one already running finishes. */
  stop(): void;
}

export function repeat(ms: number, task: () => unknown): Repeating {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      // A task that throws or rejects is its own to report; the next run still comes.
      void Promise.resolve()
        .then(task)
        .catch(() => {})
        .finally(schedule);
    }, ms);
    timer.unref();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
