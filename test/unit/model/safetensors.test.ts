import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelFileError } from '../../../src/model/model-error.js';
import { Checkpoint, SafetensorsFile, writeSafetensors } from '../../../src/model/safetensors.js';
import { rawSafetensors } from '../../helpers/hf-fixtures.js';

const work = mkdtempSync(join(tmpdir(), 'safetensors-'));
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
const path = () => join(work, `f${n++}.safetensors`);

function f32Tensor(name: string, shape: number[], values: number[]) {
  const bytes = new Uint8Array(Float32Array.from(values).buffer);
  return { name, dtype: 'F32', shape, write: (sink: (c: Uint8Array) => void) => sink(bytes) };
}

test('write then read: shapes, dtypes and row ranges', () => {
  const file = path();
  const half = new Uint8Array(Uint16Array.of(0x3c00, 0x4000, 0xc200).buffer); // 1, 2, -3
  writeSafetensors(file, [
    f32Tensor('a', [2, 3], [1, 2, 3, 4, 5, 6]),
    { name: 'h', dtype: 'F16', shape: [3], write: (sink) => sink(half) },
    // written in two chunks
    { name: 'b', dtype: 'F32', shape: [1], write: (sink) => (sink(new Uint8Array(Float32Array.of(7).buffer).subarray(0, 2)), sink(new Uint8Array(Float32Array.of(7).buffer).subarray(2))) },
  ]);
  const st = SafetensorsFile.open(file);
  assert.deepEqual(st.tensors.get('a')!.shape, [2, 3]);
  assert.equal(st.tensors.get('h')!.dtype, 'F16');
  assert.equal(st.tensors.get('a')!.begin % 8, 0); // the header is padded so the data is aligned
  st.close();
  const dir = join(work, 'ck');
  mkdirSync(dir);
  writeSafetensors(join(dir, 'model.safetensors'), [f32Tensor('w', [3, 2], [1, 2, 3, 4, 5, 6])]);
  const ckpt = Checkpoint.open(dir);
  const info = ckpt.expect('w', [3, 2]);
  assert.deepEqual([...ckpt.readRows(info, 1, 3)], [3, 4, 5, 6]);
  assert.deepEqual([...ckpt.readAll(info)], [1, 2, 3, 4, 5, 6]);
  ckpt.close();
});

test('a writer that produces the wrong number of bytes is caught and leaves no file', () => {
  const file = path();
  assert.throws(
    () => writeSafetensors(file, [{ name: 'x', dtype: 'F32', shape: [2], write: (sink) => sink(new Uint8Array(4)) }]),
    /wrote 4 bytes, expected 8/,
  );
  assert.equal(existsSync(file), false);
});

function assertRefused(file: string, pattern: RegExp): void {
  assert.throws(
    () => SafetensorsFile.open(file),
    (err: unknown) => err instanceof ModelFileError && err.message.startsWith(file) && pattern.test(err.message),
  );
}

test('garbage and truncated files are refused with the file named', () => {
  const empty = path();
  writeFileSync(empty, '');
  assertRefused(empty, /truncated/);
  const short = path();
  writeFileSync(short, Buffer.from([1, 2, 3]));
  assertRefused(short, /truncated/);
  const huge = path();
  const len = Buffer.alloc(16);
  len.writeBigUInt64LE(2n ** 40n);
  writeFileSync(huge, len);
  assertRefused(huge, /implausible/);
  const cut = path();
  len.writeBigUInt64LE(500n);
  writeFileSync(cut, Buffer.concat([len.subarray(0, 8), Buffer.from('{"a":')]));
  assertRefused(cut, /truncated: header needs 500 bytes/);
  const notJson = path();
  writeFileSync(notJson, Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('hello')]));
  assertRefused(notJson, /not JSON/);
  const array = path();
  rawSafetensors(array, [1, 2]);
  assertRefused(array, /not a JSON object/);
});

test('bad header entries name the tensor', () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ w: { shape: [1], data_offsets: [0, 4] } }, /tensor w: header entry has no dtype/],
    [{ w: { dtype: 'Q4_K', shape: [1], data_offsets: [0, 4] } }, /tensor w: unknown dtype "Q4_K"/],
    [{ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, /tensor w: bad shape/],
    [{ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, /tensor w: bad data_offsets/],
    [{ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, /tensor w: holds 4 bytes but F32 \[2\] needs 8/],
    [{ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, /tensor w: truncated: data ends at byte 16/],
    [{ w: null }, /tensor w: header entry has no dtype/],
  ];
  for (const [header, pattern] of cases) {
    const file = path();
    rawSafetensors(file, header, new Uint8Array(8));
    assertRefused(file, pattern);
  }
});

test('a file cut inside the data is refused at open', () => {
  const file = path();
  writeSafetensors(file, [f32Tensor('a', [4], [1, 2, 3, 4]), f32Tensor('b', [4], [5, 6, 7, 8])]);
  truncateSync(file, statSync(file).size - 3);
  assertRefused(file, /tensor b: truncated/);
});

test('random bytes never crash the reader', () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 200; i++) {
    const file = path();
    const bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 64) }, () => Math.floor(rand() * 256)));
    if (i % 2 === 0 && bytes.length >= 8) bytes.writeBigUInt64LE(BigInt(Math.floor(rand() * 80)), 0);
    writeFileSync(file, bytes);
    assert.throws(() => SafetensorsFile.open(file).close(), ModelFileError);
  }
});

test('checkpoint folders: pickle weights, no weights, shards with an index, and bad indexes', () => {
  const pickle = join(work, 'pickle');
  mkdirSync(pickle);
  writeFileSync(join(pickle, 'pytorch_model.bin'), 'PK\x03\x04');
  assert.throws(() => Checkpoint.open(pickle), /pytorch_model\.bin: pickle checkpoints are not read.*safe_serialization=True/);

  const none = join(work, 'none');
  mkdirSync(none);
  assert.throws(() => Checkpoint.open(none), /no safetensors weights/);

  const sharded = join(work, 'sharded');
  mkdirSync(sharded);
  writeSafetensors(join(sharded, 'model-00001-of-00002.safetensors'), [f32Tensor('a', [2], [1, 2])]);
  writeSafetensors(join(sharded, 'model-00002-of-00002.safetensors'), [f32Tensor('b', [1], [3])]);
  const index = { metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } };
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify(index));
  const ckpt = Checkpoint.open(sharded);
  assert.deepEqual(ckpt.names().sort(), ['a', 'b']);
  assert.deepEqual([...ckpt.readAll(ckpt.expect('b', [1]))], [3]);
  ckpt.close();

  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'model-00002-of-00002.safetensors' } }));
  assert.throws(() => Checkpoint.open(sharded), /tensor a: listed in the index but not in this shard/);
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 'missing.safetensors' } }));
  assert.throws(() => Checkpoint.open(sharded), /missing\.safetensors: cannot open \(ENOENT\)/);
  writeFileSync(join(sharded, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../x.safetensors' } }));
  assert.throws(() => Checkpoint.open(sharded), /bad shard name/);
  writeFileSync(join(sharded, 'model.safetensors.index.json'), '{oops');
  assert.throws(() => Checkpoint.open(sharded), /not a safetensors index/);
});

test('expect() checks presence, float dtype and shape', () => {
  const dir = join(work, 'expect');
  mkdirSync(dir);
  writeSafetensors(join(dir, 'model.safetensors'), [
    f32Tensor('w', [2, 2], [1, 2, 3, 4]),
    { name: 'ids', dtype: 'I64', shape: [1], write: (sink) => sink(new Uint8Array(8)) },
  ]);
  const ckpt = Checkpoint.open(dir);
  assert.throws(() => ckpt.expect('nope', [1]), /tensor nope: missing from the checkpoint/);
  assert.throws(() => ckpt.expect('ids', [1]), /tensor ids: dtype I64 is not a float type/);
  assert.throws(() => ckpt.expect('w', [4, 1]), /tensor w: shape \[2, 2\] but the config needs \[4, 1\]/);
  ckpt.close();
});
