/**
 * Progress bars for the long steps of the data tools, on stderr through cli-progress. They draw
 * only when stderr is a terminal (cli-progress's default), so logs and tests stay clean.
 */
import { SingleBar } from 'cli-progress';

export interface Progress {
  update(value: number): void;
  stop(): void;
}

export function startProgress(label: string, total: number, unit: 'bytes' | 'rows'): Progress {
  const bar = new SingleBar({
    format: `${label.padEnd(12)} [{bar}] {percentage}% | {value}/{total} ${unit === 'bytes' ? 'MB' : 'rows'} | ETA {eta_formatted}`,
    hideCursor: null,
    clearOnComplete: false,
    etaBuffer: 50,
    formatValue: (v, _o, type) => (unit === 'bytes' && (type === 'value' || type === 'total') ? (v / 1e6).toFixed(1) : String(v)),
  });
  bar.start(Math.max(total, 1), 0);
  let stopped = false;
  return {
    update: (value) => bar.update(Math.min(value, Math.max(total, 1))),
    stop: () => {
      if (!stopped) bar.stop();
      stopped = true;
    },
  };
}
