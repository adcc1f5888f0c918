// Incremental sampling of the hierarchical PixelVAE (src/models/hierarchical/incremental.ts) against
// the full-recompute sampler (one whole network pass per draw), which is its reference: with the
// same noise both give the same z1 (to float rounding) and the same pixels, from z2 and from a
// given z1, on the tiny preset and on odd sizes and widths. Parameters are perturbed first (random
// biases, scaled gains) so every bias and gain matters. By hand: several positions per dispatch draw
// the same pixels, and a sampler whose cache misses one position must disagree, which shows the
// comparison sees the caches. And both levels' draws are the float64 reference draws
// (src/engine/reference/sample.ts) from one pass of each PixelCNN over what was drawn: by causality
// that pass gives every position's distribution as it was when the position was drawn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { hierConfig, latentGrids, type HierConfig } from '../src/models/hierarchical/config';
import { IncrementalSampler } from '../src/models/hierarchical/incremental';
import { HierarchicalPixelVae, type LevelNoise } from '../src/models/hierarchical/model';
import { nd } from '../src/engine/reference/ndarray';
import { categoricalDraw, gaussianDraw } from '../src/engine/reference/sample';
import { useGpu } from './support/gpu';
import { perturb } from './support/perturb';

beforeAll(useGpu);

interface Drawn {
  z1: Float32Array;
  images: Uint32Array;
}

type Start = { z2: E.Tensor } | { z1: E.Tensor };

async function generate(model: HierarchicalPixelVae, start: Start, noise: Pick<LevelNoise, 'eps1' | 'uniforms'>, method: 'incremental' | 'full'): Promise<Drawn> {
  const out = await model.generate(start, noise, { method });
  try {
    return { z1: (await out.z1.data()) as Float32Array, images: (await out.images.data()) as Uint32Array };
  } finally {
    out.images.dispose();
    out.z1.dispose();
    out.z2?.dispose();
  }
}

/** Largest |a - b| / max(1, |b|). */
function worstRelative(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

function differing(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function expectSame(full: Drawn, incremental: Drawn, label: string): void {
  expect(worstRelative(incremental.z1, full.z1), `${label}: z1`).toBeLessThan(1e-4);
  expect(differing(incremental.images, full.images), `${label}: sub-pixels drawn differently (of ${full.images.length})`).toBe(0);
  // Not degenerate: the draws spread over many values.
  expect(new Set(full.images).size, `${label}: distinct sub-pixel values`).toBeGreaterThan(20);
}

async function compare(config: HierConfig, batch: number, seed: number, from: 'z2' | 'z1'): Promise<void> {
  const model = new HierarchicalPixelVae(config);
  try {
    await perturb(model, seed);
    const [l1, h1, w1] = model.shapes.z1;
    const noise = model.levelNoise(batch, 1, seed, null);
    const given = from === 'z1' ? E.keep(E.randomNormal([batch, l1, h1, w1], seed, [1, 99])) : null;
    const start: Start = given ? { z1: given } : { z2: noise.z2 };
    try {
      const full = await generate(model, start, noise, 'full');
      const incremental = await generate(model, start, noise, 'incremental');
      expectSame(full, incremental, `${config.preset} ${config.imageSize}px from ${from}, batch ${batch}`);
    } finally {
      given?.dispose();
      for (const t of [noise.z2, noise.eps1, noise.uniforms]) t.dispose();
    }
  } finally {
    model.dispose();
  }
}

describe('hierarchical incremental sampling equals the full-recompute sampler', () => {
  it('tiny preset from z2: same z1 (1e-4 relative) and the same pixels', () => compare(hierConfig('tiny', { seed: 3 }), 3, 5, 'z2'), 120_000);

  // The batch sets the kernel's blocking (incremental.ts): 3 -> 1 image per thread, 5 -> 2 images
  // per thread (a last workgroup with one live image), 17 -> 4 images per thread, 2 blocks per workgroup.
  it('tiny preset from a given z1, batch 17 (several images per thread and per workgroup, a part-filled last workgroup)', () =>
    compare(hierConfig('tiny', { seed: 4 }), 17, 6, 'z1'), 120_000);

  it('odd sizes and widths: 10x10 images, an odd z1 grid (5x5), widths 3 does not divide, 5x5 input convs, a width-changing shortcut in both PixelCNNs', () =>
    compare(
      hierConfig('tiny', { seed: 5, imageSize: 10, dims: [7, 5], z1Level: 1, encoderBlocks: [1], latent1: 3, latent2: 5, pixelWidth: 5, latentPixelWidth: 7, pixelBlocks: 2, inputFilter: 5, embedDim: 3 }),
      5,
      7,
      'z2',
    ), 240_000);
});

describe('hierarchical incremental sampling against the float64 reference draws', () => {
  it('z1 is the reference Gaussian step and every sub-pixel the reference inverse-CDF draw, from one pass of each PixelCNN', async () => {
    const config = hierConfig('tiny', { seed: 11 });
    const model = new HierarchicalPixelVae(config);
    const batch = 5;
    const noise = model.levelNoise(batch, 1, 12, null);
    try {
      await perturb(model, 13);
      const out = await model.generate({ z2: noise.z2 }, noise, { method: 'incremental' });
      model.bn.training = false; // the running statistics generate() used
      const [z1, images, raw, logits, eps1, uniforms] = await E.tidyAsync(async () => {
        const raw = E.noGrad(() => model.priorRaw(out.z1, model.priorFeatures(noise.z2)));
        const logits = E.noGrad(() => model.pixelLogits(out.images, model.pixelFeatures(out.z1)));
        return Promise.all([out.z1.data(), out.images.data(), raw.data(), logits.data(), noise.eps1.data(), noise.uniforms.data()]);
      });
      for (const t of [out.z1, out.images, out.z2]) t?.dispose();
      const [l1, h1, w1] = model.shapes.z1;
      const [c, h, w] = model.shapes.image;
      const zWant = gaussianDraw(nd([batch, 2 * l1, h1, w1], raw), nd([batch, l1, h1, w1], eps1), 0);
      expect(worstRelative(z1 as Float32Array, Float32Array.from(zWant.data)), 'z1 vs the reference').toBeLessThan(1e-4);
      const want = categoricalDraw(nd([batch, 256, c, h, w], logits), nd([batch, c, h, w], uniforms));
      let ambiguous = 0;
      let wrong = 0;
      for (let i = 0; i < images.length; i++) {
        // float32 partial sums over 256 classes are good to ~1e-6 of the total.
        if (want.margin.data[i] < 1e-5) ambiguous++;
        else if (images[i] !== want.classes.data[i]) wrong++;
      }
      expect(wrong, `sub-pixels unlike the reference draw (of ${images.length}, ${ambiguous} within rounding of a boundary)`).toBe(0);
      expect(ambiguous).toBeLessThanOrEqual(2);
      expect(new Set(images).size).toBeGreaterThan(20);
    } finally {
      for (const t of [noise.z2, noise.eps1, noise.uniforms]) t.dispose();
      model.dispose();
    }
  }, 120_000);
});

/** The pixel level by hand: `order` encodes the positions (each call: first position, count). */
async function pixelsByHand(model: HierarchicalPixelVae, z1: E.Tensor, uniforms: E.Tensor, order: (encode: (position: number, count?: number) => void, positions: number) => void): Promise<Uint32Array> {
  const [c, h, w] = model.shapes.image;
  const batch = z1.shape[0];
  return E.tidyAsync(async () => {
    const canvas = E.fromArray(new Uint32Array(batch * c * h * w), [batch, c, h, w], 'u32');
    const features = E.noGrad(() => model.pixelFeatures(z1));
    const sampler = E.noGrad(() => IncrementalSampler.create({ stack: model.pixelCnns.pixel, features, noise: uniforms, canvas, embedding: model.embeddingWeights }));
    order((position, count) => sampler.encode(position, count), sampler.positions);
    sampler.dispose();
    return (await canvas.data()) as Uint32Array;
  });
}

describe('the sampler by hand', () => {
  const config = hierConfig('tiny', { seed: 8 });
  const batch = 3;
  let model: HierarchicalPixelVae;
  let noise: LevelNoise;
  let z1: E.Tensor;
  let full: Drawn;
  beforeAll(async () => {
    model = new HierarchicalPixelVae(config);
    await perturb(model, 9);
    model.bn.training = false; // running statistics, as generate() uses
    noise = model.levelNoise(batch, 1, 10, null);
    z1 = E.keep(E.randomNormal([batch, config.latent1, latentGrids(config).z1, latentGrids(config).z1], 10, [1, 99]));
    full = await generate(model, { z1 }, noise, 'full');
  }, 120_000);
  afterAll(() => {
    for (const t of [z1, noise.z2, noise.eps1, noise.uniforms]) t.dispose();
    model.dispose();
  });

  it('several positions per dispatch (a row, then the whole image in one) draw what one per dispatch does', async () => {
    const size = config.imageSize;
    const byRow = await pixelsByHand(model, z1, noise.uniforms, (encode) => {
      for (let row = 0; row < size; row++) encode(row * size, size);
    });
    const once = await pixelsByHand(model, z1, noise.uniforms, (encode, positions) => encode(0, positions));
    expect(differing(byRow, full.images)).toBe(0);
    expect(differing(once, full.images)).toBe(0);
  });

  it('a position drawn out of order (its cache holds zeros there when later positions read it) disagrees with the full sampler: the comparison sees the caches', async () => {
    const late = config.imageSize + 1;
    const images = await pixelsByHand(model, z1, noise.uniforms, (encode, positions) => {
      for (let position = 0; position < positions; position++) if (position !== late) encode(position);
      encode(late);
    });
    expect(differing(images, full.images)).toBeGreaterThan(10);
  });
});
