/**
 * Open-loop arrival times, as vLLM's `benchmark_serving` draws them: the gaps between requests
 * are gamma-distributed with shape B (`--burstiness`) and mean 1/R (`--rate`), so B = 1 is a
 * Poisson process, B < 1 burstier, B > 1 more even. Numbers come from pure-rand's seeded
 * xoroshiro128+, so a seed gives the same schedule every run.
 *
 * Gamma variates by Marsaglia and Tsang's method (2000): for shape k ≥ 1, d = k − 1/3,
 * c = 1/√(9d), repeat x ~ N(0,1), v = (1 + c·x)³ until log u < x²/2 + d − d·v + d·log v, giving
 * d·v; for k < 1, a gamma(k + 1) variate times u^(1/k). Hand-written: pure-rand has no gamma
 * distribution and none of the project's dependencies does.
 */
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
}

export function seededRandom(seed: number): Random {
  const gen = xoroshiro128plus(seed);
  return { next: () => uniformFloat64(gen) };
}

function normal(r: Random): number {
  // Box–Muller; 1 − u keeps the logarithm finite.
  const u = 1 - r.next();
  const v = r.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** One gamma(shape, scale) variate. */
export function gamma(shape: number, scale: number, r: Random): number {
  if (shape < 1) return gamma(shape + 1, scale, r) * Math.pow(1 - r.next(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    const x = normal(r);
    const t = 1 + c * x;
    if (t <= 0) continue;
    const v = t * t * t;
    const u = 1 - r.next();
    if (Math.log(u) < (x * x) / 2 + d - d * v + d * Math.log(v)) return d * v * scale;
  }
}

/**
 * Send times in ms from the start of the stage: at most `max` of them, all before `durationMs`.
 * The first request leaves at 0.
 */
export function arrivalTimes(rate: number, burstiness: number, durationMs: number, max: number, r: Random): Float64Array {
  const expected = Math.min(max, Math.ceil(rate * (durationMs / 1000) * 1.2) + 16);
  let out = new Float64Array(expected);
  let n = 0;
  const scale = 1000 / (rate * burstiness);
  for (let t = 0; t < durationMs && n < max; t += gamma(burstiness, scale, r)) {
    if (n === out.length) {
      const bigger = new Float64Array(out.length * 2);
      bigger.set(out);
      out = bigger;
    }
    out[n++] = t;
  }
  return out.subarray(0, n);
}
