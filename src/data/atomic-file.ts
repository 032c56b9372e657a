/**
 * Files that appear whole or not at all: lines go to `<name>.<pid>.<random>.tmp` beside the
 * target, and only `commit()` (flush, fsync, rename) gives the file its name. Rename within one
 * directory is atomic on POSIX file systems, so a reader sees the old file or the new one, never
 * half of one; `abort()` removes the temporary file. Hand-written because the maintained atomic
 * writers (write-file-atomic) take the whole content at once, and these outputs are streamed.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm, open } from 'node:fs/promises';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export class AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  private readonly stream: WriteStream;
  private failure: Error | null = null;
  // Lines are gathered into ~64 KiB writes: one write per line costs a syscall each.
  private pending: string[] = [];
  private pendingChars = 0;

  private constructor(path: string) {
    this.path = path;
    this.tempPath = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    this.stream = createWriteStream(this.tempPath, { flags: 'wx' });
    this.stream.on('error', (err) => {
      this.failure = err;
    });
  }

  static async create(path: string): Promise<AtomicFile> {
    const file = new AtomicFile(path);
    await Promise.race([once(file.stream, 'open'), once(file.stream, 'error').then(([err]) => Promise.reject(err))]);
    return file;
  }

  /** Writes text, waiting when the stream's buffer is full so that memory stays bounded. */
  async write(text: string): Promise<void> {
    if (this.failure) throw this.failure;
    this.pending.push(text);
    this.pendingChars += text.length;
    if (this.pendingChars >= 64 * 1024) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const chunk = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }

  /** Flushes and closes the temporary file without naming it (for scratch files read back). */
  async close(): Promise<void> {
    if (!this.stream.closed) {
      await this.flush();
      this.stream.end();
      await once(this.stream, 'close');
    }
    if (this.failure) throw this.failure;
  }

  async commit(): Promise<void> {
    await this.close();
    const fh = await open(this.tempPath, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(this.tempPath, this.path);
  }

  async abort(): Promise<void> {
    this.pending = [];
    this.stream.destroy();
    await rm(this.tempPath, { force: true });
  }
}

/** Writes a whole small file atomically (reports, summaries). */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const file = await AtomicFile.create(path);
  try {
    await file.write(text);
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}
