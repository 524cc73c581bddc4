/** A source of uniform numbers in [0, 1); `Math.random` in production, a seeded generator in tests. */
export type Random = () => number;

/** A small deterministic generator (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Two distinct candidates drawn uniformly ("power of two choices"), or the only one. Sampling two instead
 * of scanning all keeps several routers with the same (slightly stale) view from all herding onto the
 * single best-looking node.
 */
export function sampleTwo<T>(candidates: readonly T[], random: Random): [T] | [T, T] {
  const n = candidates.length;
  if (n === 1) return [candidates[0]!];
  const i = Math.min(n - 1, Math.floor(random() * n));
  let j = Math.min(n - 2, Math.floor(random() * (n - 1)));
  if (j >= i) j += 1;
  return [candidates[i]!, candidates[j]!];
}
