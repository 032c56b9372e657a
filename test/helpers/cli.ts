/** Runs a compiled CLI entry point (dist/src/cli/NAME.js) as a real process. */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { CLI_DIR } from './paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(name: string, args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(CLI_DIR, `${name}.js`), ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
