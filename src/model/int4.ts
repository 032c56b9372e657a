/**
 * Block-wise 4-bit weight quantization in the layout of onnxruntime's `com.microsoft.MatMulNBits`.
 *
 * Algorithm: a linear layer's weight W [N, K] (the checkpoint's [out, in]) is cut along K into
 * blocks of `blockSize`. Each block gets min = min(0, values) and max = max(0, values) (zero
 * stays exactly representable), scale = (max − min) / 15 (rounded to the graph's float type
 * first, so the zero point is computed against the scale that will be used), zero point
 * zp = round(−min / scale) in [0, 15], and q = clamp(round(v / scale) + zp, 0, 15); the graph
 * dequantizes (q − zp) · scale. Layout: B uint8 [N, blocks, blockSize / 2] with the first of
 * each pair of values in the low nibble; scales [N · blocks]; zero points uint8
 * [N · ceil(blocks / 2)], two per byte, low nibble first. A K that is not a multiple of the
 * block is padded with zeros. Rows are independent, so the exporter quantizes a large weight in
 * row blocks as it streams it.
 */
import { floatToHalf, halfToFloat, type GraphDtype } from './dtype.js';

export const INT4_BLOCK_SIZE = 32;
/** MatMulNBits `accuracy_level`: 4 computes with int8 activations on CPU (what onnxruntime-genai uses there). */
export const INT4_ACCURACY_LEVEL = 4;

export interface Int4Layout {
  n: number;
  k: number;
  blockSize: number;
  blocksPerRow: number;
  blobBytes: number;
  zeroPointBytesPerRow: number;
}

export function int4Layout(n: number, k: number, blockSize = INT4_BLOCK_SIZE): Int4Layout {
  const blocksPerRow = Math.ceil(k / blockSize);
  return { n, k, blockSize, blocksPerRow, blobBytes: blockSize / 2, zeroPointBytesPerRow: Math.ceil(blocksPerRow / 2) };
}

export interface Int4Rows {
  packed: Uint8Array;
  /** The scales as the graph stores them (already rounded to its float type). */
  scales: Float32Array;
  zeroPoints: Uint8Array;
}

/** Quantizes `rows` rows of K values each (row-major `w`). */
export function quantizeInt4Rows(w: Float32Array, rows: number, layout: Int4Layout, dtype: GraphDtype): Int4Rows {
  const { k, blockSize, blocksPerRow, blobBytes, zeroPointBytesPerRow } = layout;
  const scales = new Float32Array(rows * blocksPerRow);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      let lo = 0;
      let hi = 0;
      const end = Math.min(k, (b + 1) * blockSize);
      for (let i = b * blockSize; i < end; i++) {
        const v = w[r * k + i]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      scales[r * blocksPerRow + b] = (hi - lo) / 15;
    }
  }
  // Mins are needed again after rounding the scales; recomputing them is cheaper than storing.
  if (dtype === 'fp16') halfToFloat(floatToHalf(scales), scales);
  const packed = new Uint8Array(rows * blocksPerRow * blobBytes);
  const zeroPoints = new Uint8Array(rows * zeroPointBytesPerRow);
  const q = new Uint8Array(blockSize);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const scale = scales[r * blocksPerRow + b]!;
      const start = b * blockSize;
      const end = Math.min(k, start + blockSize);
      let zp = 0;
      q.fill(0);
      if (scale > 0) {
        let lo = 0;
        for (let i = start; i < end; i++) lo = Math.min(lo, w[r * k + i]!);
        zp = Math.min(15, Math.max(0, Math.round(-lo / scale)));
        for (let i = 0; i < blockSize; i++) {
          const v = start + i < end ? w[r * k + start + i]! : 0;
          q[i] = Math.min(15, Math.max(0, Math.round(v / scale) + zp));
        }
      }
      const blob = (r * blocksPerRow + b) * blobBytes;
      for (let i = 0; i < blobBytes; i++) packed[blob + i] = q[2 * i]! | (q[2 * i + 1]! << 4);
      const zpByte = r * zeroPointBytesPerRow + (b >> 1);
      zeroPoints[zpByte] = zeroPoints[zpByte]! | (b & 1 ? zp << 4 : zp);
    }
  }
  return { packed, scales, zeroPoints };
}

/** The values the graph computes with, for measuring quantization error. */
export function dequantizeInt4Rows(q: Int4Rows, rows: number, layout: Int4Layout): Float32Array {
  const { k, blockSize, blocksPerRow, blobBytes, zeroPointBytesPerRow } = layout;
  const out = new Float32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < k; i++) {
      const b = Math.floor(i / blockSize);
      const j = i % blockSize;
      const byte = q.packed[(r * blocksPerRow + b) * blobBytes + (j >> 1)]!;
      const v = j & 1 ? byte >> 4 : byte & 15;
      const zpByte = q.zeroPoints[r * zeroPointBytesPerRow + (b >> 1)]!;
      const zp = b & 1 ? zpByte >> 4 : zpByte & 15;
      out[r * k + i] = (v - zp) * q.scales[r * blocksPerRow + b]!;
    }
  }
  return out;
}
