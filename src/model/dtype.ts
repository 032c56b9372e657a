/**
 * Element types of checkpoints and of the exported graph, and bulk conversion between them.
 *
 * Hand-written because Node 20 has no Float16Array and the converters must run over billions of
 * weights: a lookup table for half → single and a branch-light bit routine for single → half
 * (round to nearest even, overflow to infinity, subnormals kept), both over whole typed arrays.
 * Per-value library helpers (one call and one DataView per element) are several times slower.
 */

/** Float element types a safetensors checkpoint may hold, with their sizes in bytes. */
export const SAFETENSORS_FLOAT_DTYPES = { F32: 4, F16: 2, BF16: 2 } as const;
export type SafetensorsFloatDtype = keyof typeof SAFETENSORS_FLOAT_DTYPES;

/** Every dtype of the safetensors format with its size, so that headers can be checked. */
export const SAFETENSORS_DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export function isFloatDtype(dtype: string): dtype is SafetensorsFloatDtype {
  return Object.hasOwn(SAFETENSORS_FLOAT_DTYPES, dtype);
}

/** The graph's float type: weights and activations (int4 weights keep scales in this type). */
export type GraphDtype = 'fp32' | 'fp16';

const HALF_TO_FLOAT = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    let v: number;
    if (exp === 0) v = man * 2 ** -24;
    else if (exp === 31) v = man === 0 ? Infinity : NaN;
    else v = (1 + man / 1024) * 2 ** (exp - 15);
    table[h] = sign * v;
  }
  return table;
})();

/** Half-precision bits to float32, element by element. */
export function halfToFloat(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = HALF_TO_FLOAT[src[i]!]!;
  return out;
}

/** bfloat16 bits to float32 (bfloat16 is the upper half of a float32). */
export function bfloat16ToFloat(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/** float32 to half-precision bits, rounding to nearest even. */
export function floatToHalf(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) {
    const x = bits[i]!;
    const sign = (x >>> 16) & 0x8000;
    const f = x & 0x7fffffff;
    let h: number;
    if (f >= 0x7f800000) {
      h = f > 0x7f800000 ? 0x7e00 : 0x7c00; // NaN stays NaN, infinity stays infinity
    } else if (f >= 0x477ff000) {
      h = 0x7c00; // 65520 and above round to infinity
    } else if (f >= 0x38800000) {
      h = (f - 0x38000000) >>> 13; // rebias the exponent from 127 to 15
      const rest = f & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
    } else if (f > 0x33000000) {
      const exp = f >>> 23;
      const man = (f & 0x7fffff) | 0x800000;
      const shift = 126 - exp; // a half subnormal counts units of 2^-24
      h = man >>> shift;
      const rest = man & ((1 << shift) - 1);
      const half = 1 << (shift - 1);
      if (rest > half || (rest === half && h & 1)) h++;
    } else {
      h = 0;
    }
    out[i] = sign | h;
  }
  return out;
}

/** Decodes little-endian checkpoint bytes of a float dtype to float32. */
export function toFloat32(bytes: Uint8Array, dtype: SafetensorsFloatDtype, out?: Float32Array): Float32Array {
  const n = bytes.byteLength / SAFETENSORS_FLOAT_DTYPES[dtype];
  const target = out ?? new Float32Array(n);
  if (dtype === 'F32') {
    // The bytes may sit at any offset of a pooled Buffer: copy rather than alias.
    new Uint8Array(target.buffer, target.byteOffset, n * 4).set(bytes);
    return target;
  }
  const halves = bytes.byteOffset % 2 === 0
    ? new Uint16Array(bytes.buffer, bytes.byteOffset, n)
    : new Uint16Array(bytes.slice().buffer, 0, n);
  return dtype === 'F16' ? halfToFloat(halves, target) : bfloat16ToFloat(halves, target);
}

/** float32 values as the bytes of the graph dtype. */
export function fromFloat32(values: Float32Array, dtype: GraphDtype): Uint8Array {
  if (dtype === 'fp32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const half = floatToHalf(values);
  return new Uint8Array(half.buffer, half.byteOffset, half.byteLength);
}
