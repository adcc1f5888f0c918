// Random bytes as training images for the benchmarks: a step's cost does not depend on what the pixels
// show. One linear congruential stream per seed, so a benchmark's data are the same on every run.
import type { ImageSet } from '../data/mnist';

export function syntheticDigits(count: number, size: number, seed = 12345): ImageSet {
  const images = new Uint8Array(count * size * size);
  let s = seed >>> 0;
  for (let i = 0; i < images.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    images[i] = s >>> 24;
  }
  return { name: 'synthetic', count, height: size, width: size, images, labels: new Uint8Array(count) };
}
