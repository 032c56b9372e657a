/**
 * Weight jobs: each reads one checkpoint tensor in row blocks and writes it, converted, into
 * its place in the external data file, so memory stays at one block (64 MB of float32) whatever
 * the tensor size. Three shapes of output:
 * - `copy`: the checkpoint layout as is (embedding, norm weights, biases);
 * - `matmul`: transposed to [in, out] for MatMul, with a LoRA delta merged first if given; a row
 *   block of W is a column block of Wᵀ, written as one positional write per input row;
 * - `int4`: quantized rows for MatMulNBits (already [out, in]), three outputs written in step.
 */
import { fromFloat32, type GraphDtype } from './dtype.js';
import type { WeightDecl, WeightJob } from './graph-builder.js';
import { int4Layout, quantizeInt4Rows } from './int4.js';
import type { LoraFactors } from './peft-adapter.js';
import { numel, type Checkpoint, type TensorInfo } from './safetensors.js';

const BLOCK_ELEMS = 16 * 1024 * 1024;

function* rowBlocks(rows: number, cols: number): Generator<[number, number]> {
  const step = Math.max(1, Math.floor(BLOCK_ELEMS / Math.max(1, cols)));
  for (let r0 = 0; r0 < rows; r0 += step) yield [r0, Math.min(rows, r0 + step)];
}

function dims2(info: TensorInfo): [number, number] {
  return info.shape.length === 1 ? [1, info.shape[0]!] : [info.shape[0]!, numel(info.shape.slice(1))];
}

/** Whether the checkpoint's bytes are already the graph's (F32 into fp32, F16 into fp16). */
function sameType(info: TensorInfo, dtype: GraphDtype): boolean {
  return (info.dtype === 'F32' && dtype === 'fp32') || (info.dtype === 'F16' && dtype === 'fp16');
}

export function copyJob(ckpt: Checkpoint, info: TensorInfo, decl: WeightDecl, dtype: GraphDtype): WeightJob {
  return {
    label: info.name,
    weights: [decl],
    run(write) {
      const [rows, cols] = info.shape.length === 1 ? [info.shape[0]!, 1] : dims2(info);
      const elemBytes = decl.byteLength / (rows * cols);
      for (const [r0, r1] of rowBlocks(rows, cols)) {
        const bytes = sameType(info, dtype) ? ckpt.readRowBytes(info, r0, r1) : fromFloat32(ckpt.readRows(info, r0, r1), dtype);
        write(decl, r0 * cols * elemBytes, bytes);
      }
    },
  };
}

/** Adds the merged LoRA delta (Bᵀ·... in graph layout: ΔW[o, i] = Σₖ a[i, k] · b[k, o]) to rows [r0, r1) of W. */
export function mergeLoraRows(w: Float32Array, r0: number, r1: number, lora: LoraFactors): void {
  const { inFeatures: inF, outFeatures: out, rank, a, b } = lora;
  const aRows = new Float32Array(rank * inF); // Aᵀᵀ = A [rank, in], so the inner loop runs along memory
  for (let i = 0; i < inF; i++) for (let k = 0; k < rank; k++) aRows[k * inF + i] = a[i * rank + k]!;
  for (let o = r0; o < r1; o++) {
    const row = (o - r0) * inF;
    for (let k = 0; k < rank; k++) {
      const c = b[k * out + o]!;
      if (c === 0) continue;
      const ak = k * inF;
      for (let i = 0; i < inF; i++) w[row + i] = w[row + i]! + c * aRows[ak + i]!;
    }
  }
}

/** [rows, cols] → [cols, rows], in tiles so that both sides stay in cache. */
function transposeBlock<T extends Float32Array | Uint16Array>(src: T, rows: number, cols: number, out: T): T {
  const T = 64;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = src[r * cols + c]!;
    }
  }
  return out;
}

export function matmulJob(
  ckpt: Checkpoint,
  info: TensorInfo,
  decl: WeightDecl,
  dtype: GraphDtype,
  merge?: LoraFactors,
): WeightJob {
  return {
    label: info.name,
    weights: [decl],
    run(write) {
      const [out, inF] = dims2(info);
      const elemBytes = dtype === 'fp32' ? 4 : 2;
      // Half-precision weights going into an fp16 graph unchanged are moved as raw 16-bit values.
      const raw = !merge && info.dtype === 'F16' && dtype === 'fp16';
      let block = new Float32Array(0);
      let transposed = new Float32Array(0);
      let transposedRaw = new Uint16Array(0);
      for (const [r0, r1] of rowBlocks(out, inF)) {
        const rows = r1 - r0;
        let bytes: Uint8Array;
        if (raw) {
          const src = ckpt.readRowBytes(info, r0, r1);
          if (transposedRaw.length < rows * inF) transposedRaw = new Uint16Array(rows * inF);
          const t = transposeBlock(new Uint16Array(src.buffer, src.byteOffset, rows * inF), rows, inF, transposedRaw.subarray(0, rows * inF));
          bytes = new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
        } else {
          if (block.length < rows * inF) {
            block = new Float32Array(rows * inF);
            transposed = new Float32Array(rows * inF);
          }
          const w = ckpt.readRows(info, r0, r1, block);
          if (merge) mergeLoraRows(w, r0, r1, merge);
          bytes = fromFloat32(transposeBlock(w, rows, inF, transposed.subarray(0, rows * inF)), dtype);
        }
        if (rows === out) {
          write(decl, 0, bytes);
          continue;
        }
        for (let i = 0; i < inF; i++) {
          write(decl, (i * out + r0) * elemBytes, bytes.subarray(i * rows * elemBytes, (i + 1) * rows * elemBytes));
        }
      }
    },
  };
}

export interface Int4Decls {
  packed: WeightDecl;
  scales: WeightDecl;
  zeroPoints: WeightDecl;
}

export function int4Job(
  ckpt: Checkpoint,
  info: TensorInfo,
  decls: Int4Decls,
  dtype: GraphDtype,
  merge?: LoraFactors,
): WeightJob {
  return {
    label: info.name,
    weights: [decls.packed, decls.scales, decls.zeroPoints],
    run(write) {
      const [out, inF] = dims2(info);
      const layout = int4Layout(out, inF);
      const scaleBytes = dtype === 'fp32' ? 4 : 2;
      let block = new Float32Array(0);
      for (const [r0, r1] of rowBlocks(out, inF)) {
        if (block.length < (r1 - r0) * inF) block = new Float32Array((r1 - r0) * inF);
        const w = ckpt.readRows(info, r0, r1, block);
        if (merge) mergeLoraRows(w, r0, r1, merge);
        const q = quantizeInt4Rows(w, r1 - r0, layout, dtype);
        write(decls.packed, r0 * layout.blocksPerRow * layout.blobBytes, q.packed);
        write(decls.scales, r0 * layout.blocksPerRow * scaleBytes, fromFloat32(q.scales, dtype));
        write(decls.zeroPoints, r0 * layout.zeroPointBytesPerRow, q.zeroPoints);
      }
    },
  };
}

/** A weight computed by the builder itself (the rotary caches). */
export function valuesJob(label: string, decl: WeightDecl, dtype: GraphDtype, values: () => Float32Array): WeightJob {
  return { label, weights: [decl], run: (write) => write(decl, 0, fromFloat32(values(), dtype)) };
}
