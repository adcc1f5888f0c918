// Float64 references of the counter-based random numbers (shaders/random.wgsl): Philox4x32-10 with
// exact integer products (BigInt), then the same maps from integers to uniforms, normals and coins,
// computed in float64. Element i is lane i % 4 of the block with counter (i / 4, 0, offset_lo,
// offset_hi) under key (seed_lo, seed_hi).

const MASK = 0xffffffffn;

/** Philox4x32-10 of a 4-word counter under a 2-word key. */
export function philox4x32(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter.map((v) => BigInt(v >>> 0));
  let [k0, k1] = key.map((v) => BigInt(v >>> 0));
  for (let r = 0; r < 10; r++) {
    const p0 = 0xd2511f53n * c0;
    const p1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [(p1 >> 32n) ^ c1 ^ k0, p1 & MASK, (p0 >> 32n) ^ c3 ^ k1, p0 & MASK];
    k0 = (k0 + 0x9e3779b9n) & MASK;
    k1 = (k1 + 0xbb67ae85n) & MASK;
  }
  return [c0, c1, c2, c3].map(Number);
}

/** A seed or offset as [lo, hi] u32 words (a number must be an integer in [0, 2^53)). */
export function words(value: number | readonly [number, number]): [number, number] {
  if (typeof value !== 'number') return [value[0] >>> 0, value[1] >>> 0];
  return [value % 4294967296, Math.floor(value / 4294967296)];
}

type Word2 = number | readonly [number, number];

/** The raw u32 stream: n words for (seed, offset). */
export function randomBits(n: number, seed: Word2, offset: Word2 = 0): Uint32Array {
  const key = words(seed);
  const [o0, o1] = words(offset);
  const out = new Uint32Array(n);
  for (let t = 0; 4 * t < n; t++) {
    const block = philox4x32([t, 0, o0, o1], key);
    for (let j = 0; j < 4 && 4 * t + j < n; j++) out[4 * t + j] = block[j];
  }
  return out;
}

/** Uniforms in [0, 1): the top 24 bits of each word times 2^-24 (exact in float32 too). */
export function randomUniform(n: number, seed: Word2, offset: Word2 = 0): Float64Array {
  return Float64Array.from(randomBits(n, seed, offset), (b) => (b >>> 8) / 16777216);
}

/**
 * Standard normals by Box-Muller on lanes (0, 1) and (2, 3) of each block: radius from lane 0 (2),
 * with its 24-bit integer shifted by one so the uniform lies in (0, 1]; angle from lane 1 (3).
 */
export function randomNormal(n: number, seed: Word2, offset: Word2 = 0): Float64Array {
  const blocks = Math.ceil(n / 4);
  const bits = randomBits(4 * blocks, seed, offset);
  const out = new Float64Array(n);
  for (let t = 0; t < blocks; t++) {
    for (const pair of [0, 2]) {
      const uR = ((bits[4 * t + pair] >>> 8) + 1) / 16777216;
      const uT = (bits[4 * t + pair + 1] >>> 8) / 16777216;
      const radius = Math.sqrt(-2 * Math.log(uR));
      const theta = 2 * Math.PI * uT;
      if (4 * t + pair < n) out[4 * t + pair] = radius * Math.cos(theta);
      if (4 * t + pair + 1 < n) out[4 * t + pair + 1] = radius * Math.sin(theta);
    }
  }
  return out;
}

/** Coins: 1 where the element's uniform is below p, else 0. */
export function bernoulli(p: ArrayLike<number>, seed: Word2, offset: Word2 = 0): Float64Array {
  const u = randomUniform(p.length, seed, offset);
  return Float64Array.from(u, (v, i) => (v < p[i] ? 1 : 0));
}
