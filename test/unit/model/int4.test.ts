import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floatToHalf, halfToFloat } from '../../../src/model/dtype.js';
import { dequantizeInt4Rows, int4Layout, quantizeInt4Rows } from '../../../src/model/int4.js';

function randomRows(rows: number, k: number, seed: number): Float32Array {
  let s = seed;
  const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  return Float32Array.from({ length: rows * k }, () => (rand() - 0.5) * 2 ** (rand() * 6 - 3));
}

test('layout sizes for MatMulNBits, including a K that is not a multiple of the block', () => {
  assert.deepEqual(int4Layout(8, 64), { n: 8, k: 64, blockSize: 32, blocksPerRow: 2, blobBytes: 16, zeroPointBytesPerRow: 1 });
  assert.deepEqual(int4Layout(3, 100), { n: 3, k: 100, blockSize: 32, blocksPerRow: 4, blobBytes: 16, zeroPointBytesPerRow: 2 });
  const q = quantizeInt4Rows(new Float32Array(3 * 100), 3, int4Layout(3, 100), 'fp32');
  assert.equal(q.packed.length, 3 * 4 * 16);
  assert.equal(q.scales.length, 3 * 4);
  assert.equal(q.zeroPoints.length, 3 * 2);
});

test('every value comes back within half a step of its block', () => {
  for (const [rows, k] of [
    [4, 64],
    [5, 100],
  ] as const) {
    const w = randomRows(rows, k, rows * k);
    const layout = int4Layout(rows, k);
    const q = quantizeInt4Rows(w, rows, layout, 'fp32');
    const back = dequantizeInt4Rows(q, rows, layout);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < k; i++) {
        const scale = q.scales[r * layout.blocksPerRow + Math.floor(i / 32)]!;
        assert.ok(Math.abs(back[r * k + i]! - w[r * k + i]!) <= scale / 2 + 1e-6, `row ${r} col ${i}`);
      }
    }
  }
});

test('zero blocks and zeros inside blocks stay exactly zero', () => {
  const w = new Float32Array(64);
  w[40] = 1.5;
  w[41] = -0.25;
  const layout = int4Layout(1, 64);
  const back = dequantizeInt4Rows(quantizeInt4Rows(w, 1, layout, 'fp32'), 1, layout);
  for (let i = 0; i < 32; i++) assert.equal(back[i], 0);
  assert.equal(back[42], 0);
  assert.ok(Math.abs(back[40]! - 1.5) < 0.1);
});

test('nibble order: the first of each pair in the low nibble, zero points two per byte', () => {
  // Block 0: values 0..15 step 1 → min 0, max 15, scale 1, zp 0, q = value.
  // Block 1: values −15..0 → min −15, scale 1, zp 15.
  const w = new Float32Array(64);
  for (let i = 0; i < 32; i++) w[i] = i % 16;
  for (let i = 32; i < 64; i++) w[i] = -(i % 16);
  const q = quantizeInt4Rows(w, 1, int4Layout(1, 64), 'fp32');
  assert.equal(q.packed[0], 0 | (1 << 4));
  assert.equal(q.packed[1], 2 | (3 << 4));
  assert.deepEqual([...q.scales], [1, 1]);
  assert.equal(q.zeroPoints[0], 0 | (15 << 4));
  assert.equal(q.packed[16], (15 - 0) | ((15 - 1) << 4));
});

test('fp16 scales are representable in half precision and the zero points use them', () => {
  const w = randomRows(3, 96, 99);
  const layout = int4Layout(3, 96);
  const q = quantizeInt4Rows(w, 3, layout, 'fp16');
  assert.deepEqual([...halfToFloat(floatToHalf(q.scales))], [...q.scales]);
  const back = dequantizeInt4Rows(q, 3, layout);
  for (let i = 0; i < w.length; i++) {
    const scale = q.scales[Math.floor(i / 96) * layout.blocksPerRow + Math.floor((i % 96) / 32)]!;
    assert.ok(Math.abs(back[i]! - w[i]!) <= scale / 2 + 1e-6);
  }
});
