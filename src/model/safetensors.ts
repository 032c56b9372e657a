/**
 * safetensors files: a little-endian u64 header length, a JSON header (name → dtype, shape,
 * [begin, end) offsets into the data that follows) and the raw tensor bytes.
 *
 * Reading never loads a file: the header is parsed and checked (every dtype known, every
 * range inside the file and exactly as long as its shape needs), then tensors are read with
 * positional reads, in row ranges where a tensor is large. A truncated or garbage file fails
 * at open with one line naming it. Writing streams too: the header is computed from the shapes,
 * then each tensor's bytes are produced chunk by chunk by a callback.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { SAFETENSORS_DTYPE_BYTES, isFloatDtype, toFloat32, type SafetensorsFloatDtype } from './dtype.js';
import { z } from 'zod';
import { readJsonFile } from '../shared/json-file.js';
import { ModelFileError } from './model-error.js';

/** `model.safetensors.index.json`: which shard holds each tensor. */
const SafetensorsIndexSchema = z.object({ weight_map: z.record(z.string(), z.unknown()) });

/** A header larger than this is not a real checkpoint's (chatglm3-6b's is about 20 KB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
  file: string;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

export class SafetensorsFile {
  readonly path: string;
  readonly tensors: Map<string, TensorInfo>;
  readonly metadata: Record<string, string>;
  private fd: number;

  private constructor(path: string, fd: number, tensors: Map<string, TensorInfo>, metadata: Record<string, string>) {
    this.path = path;
    this.fd = fd;
    this.tensors = tensors;
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw new ModelFileError(path, `cannot open (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    try {
      const { tensors, metadata } = readHeader(path, fd);
      return new SafetensorsFile(path, fd, tensors, metadata);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** Reads `length` bytes of a tensor starting at `offset` within it. */
  readBytes(info: TensorInfo, offset = 0, length = info.end - info.begin - offset, into?: Buffer): Buffer {
    const buf = into && into.byteLength >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, info.begin + offset + done);
      if (n === 0) throw new ModelFileError(this.path, 'file ended inside the tensor data', { tensor: info.name });
      done += n;
    }
    return buf;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

function readHeader(path: string, fd: number): { tensors: Map<string, TensorInfo>; metadata: Record<string, string> } {
  const size = fstatSync(fd).size;
  if (size < 8) throw new ModelFileError(path, `truncated: ${size} bytes, too short for a safetensors header`);
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES) {
    throw new ModelFileError(path, `not a safetensors file (header length ${headerLen} is implausible)`);
  }
  if (8 + headerLen > size) {
    throw new ModelFileError(path, `truncated: header needs ${headerLen} bytes but the file has ${size - 8} after its length`);
  }
  const headerBuf = Buffer.alloc(headerLen);
  readSync(fd, headerBuf, 0, headerLen, 8);
  let header: unknown;
  try {
    header = JSON.parse(headerBuf.toString('utf8'));
  } catch {
    throw new ModelFileError(path, 'not a safetensors file (its header is not JSON)');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new ModelFileError(path, 'not a safetensors file (its header is not a JSON object)');
  }
  const dataStart = 8 + headerLen;
  const dataLen = size - dataStart;
  const tensors = new Map<string, TensorInfo>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, string>;
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const dtype = entry?.dtype;
    if (typeof dtype !== 'string') throw new ModelFileError(path, 'header entry has no dtype', { tensor: name });
    const elem = SAFETENSORS_DTYPE_BYTES[dtype];
    if (elem === undefined) throw new ModelFileError(path, `unknown dtype ${JSON.stringify(dtype)}`, { tensor: name });
    const shape = entry?.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new ModelFileError(path, `bad shape ${JSON.stringify(shape)}`, { tensor: name });
    }
    const offsets = entry?.data_offsets;
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw new ModelFileError(path, `bad data_offsets ${JSON.stringify(offsets)}`, { tensor: name });
    }
    const [b, e] = offsets as [number, number];
    if (e > dataLen) {
      throw new ModelFileError(path, `truncated: data ends at byte ${e} but the file holds ${dataLen} data bytes`, { tensor: name });
    }
    const need = numel(shape as number[]) * elem;
    if (e - b !== need) {
      throw new ModelFileError(path, `holds ${e - b} bytes but ${dtype} [${shape.join(', ')}] needs ${need}`, { tensor: name });
    }
    tensors.set(name, { name, dtype, shape: shape as number[], begin: dataStart + b, end: dataStart + e, file: path });
  }
  return { tensors, metadata };
}

const PICKLE_HINT =
  'pickle checkpoints are not read (they can run code); convert the folder to safetensors first: ' +
  "python -c \"from transformers import AutoModel; AutoModel.from_pretrained('IN', trust_remote_code=True)" +
  ".save_pretrained('OUT', safe_serialization=True)\" and copy tokenizer.model beside it";

/**
 * The weights of a Hugging Face folder: `model.safetensors`, or shards listed by
 * `model.safetensors.index.json` (or, without an index, every `*.safetensors` file).
 */
export class Checkpoint {
  readonly dir: string;
  private readonly files: SafetensorsFile[];
  private readonly byName: Map<string, { file: SafetensorsFile; info: TensorInfo }>;
  private rowBuffer: Buffer = Buffer.from(new ArrayBuffer(0));

  private constructor(dir: string, files: SafetensorsFile[]) {
    this.dir = dir;
    this.files = files;
    this.byName = new Map();
    for (const file of files) for (const info of file.tensors.values()) this.byName.set(info.name, { file, info });
  }

  static open(dir: string): Checkpoint {
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) return Checkpoint.openIndexed(dir, index);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      throw new ModelFileError(dir, `cannot read the folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    const shards = names.includes('model.safetensors')
      ? ['model.safetensors']
      : names.filter((n) => n.endsWith('.safetensors')).sort();
    if (shards.length === 0) {
      const pickle = names.find((n) => n.endsWith('.bin') || n.endsWith('.bin.index.json') || n.endsWith('.pt'));
      if (pickle) throw new ModelFileError(join(dir, pickle), PICKLE_HINT);
      throw new ModelFileError(dir, 'no safetensors weights (model.safetensors or model.safetensors.index.json)');
    }
    return Checkpoint.fromFiles(dir, shards.map((s) => join(dir, s)));
  }

  private static openIndexed(dir: string, index: string): Checkpoint {
    const map = readJsonFile(index, SafetensorsIndexSchema, {
      fail: (file, detail) => new ModelFileError(file, `not a safetensors index (${detail})`),
    }).weight_map;
    const shards = [...new Set(Object.values(map))];
    for (const s of shards) {
      if (typeof s !== 'string' || s.includes('/') || s.includes('\\')) {
        throw new ModelFileError(index, `bad shard name ${JSON.stringify(s)}`);
      }
    }
    const ckpt = Checkpoint.fromFiles(dir, (shards as string[]).map((s) => join(dir, s)));
    for (const [name, shard] of Object.entries(map)) {
      const found = ckpt.byName.get(name);
      if (!found || basename(found.file.path) !== shard) {
        ckpt.close();
        throw new ModelFileError(join(dir, shard as string), 'listed in the index but not in this shard', { tensor: name });
      }
    }
    return ckpt;
  }

  private static fromFiles(dir: string, paths: string[]): Checkpoint {
    const files: SafetensorsFile[] = [];
    try {
      for (const p of paths) files.push(SafetensorsFile.open(p));
    } catch (err) {
      for (const f of files) f.close();
      throw err;
    }
    return new Checkpoint(dir, files);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The tensor's entry as its file declares it. */
  info(name: string): TensorInfo {
    const found = this.byName.get(name);
    if (!found) throw new ModelFileError(this.dir, 'missing from the checkpoint', { tensor: name });
    return found.info;
  }

  /** The tensor's entry, checked to be a float tensor of the expected shape. */
  expect(name: string, shape: readonly number[]): TensorInfo {
    const info = this.info(name);
    if (!isFloatDtype(info.dtype)) {
      throw new ModelFileError(info.file, `dtype ${info.dtype} is not a float type (F32, F16, BF16)`, { tensor: name });
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFileError(info.file, `shape [${info.shape.join(', ')}] but the config needs [${shape.join(', ')}]`, {
        tensor: name,
      });
    }
    return info;
  }

  /**
   * Rows [r0, r1) of a float tensor (rows are the first dimension) as float32. `out` is reused
   * when given, so a caller walking a large tensor in row blocks keeps one buffer.
   */
  readRows(info: TensorInfo, r0: number, r1: number, out?: Float32Array): Float32Array {
    const bytes = this.readRowBytes(info, r0, r1);
    const n = bytes.byteLength / SAFETENSORS_DTYPE_BYTES[info.dtype]!;
    const target = out && out.length >= n ? out.subarray(0, n) : new Float32Array(n);
    return toFloat32(bytes, info.dtype as SafetensorsFloatDtype, target);
  }

  /**
   * Rows [r0, r1) as the file stores them. The bytes live in a buffer this checkpoint reuses:
   * they are valid until its next read.
   */
  readRowBytes(info: TensorInfo, r0: number, r1: number): Buffer {
    const found = this.byName.get(info.name);
    if (!found) throw new ModelFileError(this.dir, 'missing from the checkpoint', { tensor: info.name });
    const rowElems = info.shape.length === 0 ? 1 : numel(info.shape.slice(1));
    const elemBytes = SAFETENSORS_DTYPE_BYTES[info.dtype]!;
    const length = (r1 - r0) * rowElems * elemBytes;
    // A buffer of its own (never a slice of Node's shared pool), so it is aligned for typed-array views.
    if (this.rowBuffer.byteLength < length) this.rowBuffer = Buffer.from(new ArrayBuffer(length));
    return found.file.readBytes(info, r0 * rowElems * elemBytes, length, this.rowBuffer);
  }

  readAll(info: TensorInfo): Float32Array {
    const rows = info.shape.length === 0 ? 1 : info.shape[0]!;
    return this.readRows(info, 0, rows);
  }

  close(): void {
    for (const f of this.files) f.close();
  }
}

export interface TensorToWrite {
  name: string;
  dtype: string;
  shape: number[];
  /** Produces the tensor's bytes, in order, in as many chunks as it likes. */
  write(sink: (chunk: Uint8Array) => void): void;
}

/** Writes a safetensors file tensor by tensor; memory use is one chunk, whatever the size. */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata: Record<string, string> = { format: 'pt' }): void {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const bytes = numel(t.shape) * (SAFETENSORS_DTYPE_BYTES[t.dtype] ?? 0);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8); // keeps the data 8-byte aligned, as the format recommends
  const headerBytes = Buffer.from(json, 'utf8');
  const fd = openSync(path, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(headerBytes.byteLength));
    writeSync(fd, len);
    writeSync(fd, headerBytes);
    for (const t of tensors) {
      let written = 0;
      t.write((chunk) => {
        writeAll(fd, chunk);
        written += chunk.byteLength;
      });
      const expected = numel(t.shape) * (SAFETENSORS_DTYPE_BYTES[t.dtype] ?? 0);
      if (written !== expected) throw new Error(`tensor ${t.name}: wrote ${written} bytes, expected ${expected}`);
    }
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true }); // never leave a file that looks whole but is not
    throw err;
  }
  closeSync(fd);
}

export function writeAll(fd: number, chunk: Uint8Array, position?: number): void {
  let done = 0;
  while (done < chunk.byteLength) {
    const pos = position === undefined ? null : position + done;
    done += writeSync(fd, chunk, done, chunk.byteLength - done, pos);
  }
}
