import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bfloat16ToFloat, floatToHalf, halfToFloat, toFloat32 } from '../../../src/model/dtype.js';

const half = (x: number) => floatToHalf(Float32Array.of(x))[0]!;

test('float → half: exact values, overflow, subnormals and ties to even', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00],
    [1e9, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // halfway to the smallest subnormal: ties to even (zero)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 units: ties to even (2)
    [1 + 2 ** -11, 0x3c00], // halfway between 1 and the next half: even is 1
    [1 + 3 * 2 ** -11, 0x3c02], // halfway between 0x3c01 and 0x3c02: even is 0x3c02
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above halfway rounds up
  ];
  for (const [x, h] of cases) assert.equal(half(x), h, `${x}`);
  const nan = half(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
});

test('every half value survives half → float → half', () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const back = floatToHalf(halfToFloat(all));
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) assert.ok(Number.isNaN(halfToFloat(Uint16Array.of(h))[0]!));
    else assert.equal(back[h], h, `half 0x${h.toString(16)}`);
  }
});

test('float → half picks the nearest half for random values', () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const xs = Float32Array.from({ length: 20000 }, () => (rand() - 0.5) * 2 ** (rand() * 40 - 25));
  const hs = floatToHalf(xs);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    const h = hs[i]!;
    const mine = Math.abs(halfToFloat(Uint16Array.of(h))[0]! - x);
    for (const n of [h - 1, h + 1]) {
      if (n < 0 || n > 0xffff || (n & 0x7c00) === 0x7c00) continue;
      if (((n ^ h) & 0x8000) !== 0) continue; // crossing zero
      assert.ok(mine <= Math.abs(halfToFloat(Uint16Array.of(n))[0]! - x), `x=${x} h=0x${h.toString(16)}`);
    }
  }
});

test('bfloat16 is the upper half of a float32', () => {
  assert.deepEqual([...bfloat16ToFloat(Uint16Array.of(0x3f80, 0xc000, 0x0000))], [1, -2, 0]);
});

test('toFloat32 decodes F32/F16/BF16 bytes, also at an odd offset', () => {
  const f16 = new Uint8Array([0xff, 0x00, 0x3c, 0x00, 0xc0]); // offset 1: 1.0, -2.0
  assert.deepEqual([...toFloat32(f16.subarray(1), 'F16')], [1, -2]);
  const bf = new Uint8Array([0x80, 0x3f]);
  assert.deepEqual([...toFloat32(bf, 'BF16')], [1]);
  const f32 = new Uint8Array(Float32Array.of(3.5, -1).buffer);
  assert.deepEqual([...toFloat32(f32, 'F32')], [3.5, -1]);
});
