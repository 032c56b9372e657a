/** Hugging Face folders made from the golden tiny model, whole or deliberately broken. */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Checkpoint, writeSafetensors, type TensorToWrite } from '../../src/model/safetensors.js';
import { GOLDEN_TINY_DIR } from './paths.js';
import { readJson } from './json.js';

/** The golden checkpoint's tensors as float32, ready to be rewritten. */
export function goldenTensors(): Array<TensorToWrite & { values: Float32Array }> {
  const ckpt = Checkpoint.open(GOLDEN_TINY_DIR);
  try {
    return ckpt.names().map((name) => {
      const info = ckpt.info(name);
      const values = ckpt.readAll(info);
      return {
        name,
        dtype: 'F32',
        shape: [...info.shape],
        values,
        write(sink) {
          sink(new Uint8Array(this.values.buffer, this.values.byteOffset, this.values.byteLength));
        },
      };
    });
  } finally {
    ckpt.close();
  }
}

export interface HfFixtureOptions {
  /** Changes the tensor list before it is written. */
  tensors?: (list: ReturnType<typeof goldenTensors>) => ReturnType<typeof goldenTensors>;
  /** Changes config.json. */
  config?: (config: Record<string, unknown>) => Record<string, unknown>;
  /** Leave out these files. */
  without?: Array<'config.json' | 'tokenizer.model' | 'model.safetensors'>;
}

/** Writes a Hugging Face folder at `dir` from the golden model, with the given changes. */
export function makeHfFolder(dir: string, options: HfFixtureOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const skip = new Set(options.without ?? []);
  if (!skip.has('config.json')) {
    const config = readJson<Record<string, unknown>>(join(GOLDEN_TINY_DIR, 'config.json'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(options.config ? options.config(config) : config));
  }
  if (!skip.has('tokenizer.model')) copyFileSync(join(GOLDEN_TINY_DIR, 'tokenizer.model'), join(dir, 'tokenizer.model'));
  if (!skip.has('model.safetensors')) {
    const list = goldenTensors();
    writeSafetensors(join(dir, 'model.safetensors'), options.tensors ? options.tensors(list) : list);
  }
  return dir;
}

/** A safetensors file from a raw header object and data bytes (for headers no writer would produce). */
export function rawSafetensors(path: string, header: unknown, data: Uint8Array = new Uint8Array(0)): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.byteLength));
  writeFileSync(path, Buffer.concat([len, json, data]));
}
