// The hierarchical PixelVAE (src/models/hierarchical) on its tiny preset: causality of the colour
// masks and of the latent PixelCNN (exact, by perturbing one input per batch element), the in-kernel
// samplers against their float64 references, bits/dim on a case computed by hand, a falling loss, held noise
// really held in the level-variation grids, reconstructions, and a checkpoint round trip.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { GpuColourSet } from '../src/data/colour-gpu';
import type { ColourImageSet } from '../src/data/colour';
import { hierConfig, latentGrids, schedule } from '../src/models/hierarchical/config';
import { HierarchicalPixelVae, sampleCategoricalAt, sampleGaussianAt, type Level } from '../src/models/hierarchical/model';
import { HierTrainer, evaluateHier, reestimateBatchNorm } from '../src/models/hierarchical/trainer';
import { loadHierCheckpoint, saveHierCheckpoint } from '../src/models/hierarchical/checkpoint';
import { nd } from '../src/engine/reference/ndarray';
import * as R from '../src/engine/reference/sample';
import { rng } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

const config = hierConfig('tiny');
const S = config.imageSize;
const C = config.channels;
const G1 = latentGrids(config).z1;

function randomInts(n: number, seed: number, max = 256): Uint32Array {
  const r = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(r() * max));
}

function randomFloats(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

/** Images with structure a model can learn fast: each image one of 4 flat colours, plus a darker left half. */
function toySet(count: number, seed: number): ColourImageSet {
  const palette = [[200, 40, 40], [40, 200, 40], [40, 40, 200], [220, 220, 60]];
  const r = rng(seed);
  const images = new Uint8Array(count * 3 * S * S);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const k = Math.floor(r() * 4);
    labels[i] = k;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) images[((i * 3 + c) * S + y) * S + x] = x < S / 2 ? palette[k][c] >> 1 : palette[k][c];
    }
  }
  return { name: 'toy', count, size: S, images, labels };
}

async function checkPixelCausality(m: HierarchicalPixelVae, featureChannels: number): Promise<void> {
  const plane = S * S;
  const subpixels = C * plane;
  const n = 1 + subpixels;
  const base = randomInts(subpixels, 1);
  // Image 0 is the base; image 1 + q has sub-pixel q (in generation order) changed.
  const order = (q: number): number => {
    const position = Math.floor(q / C);
    return (q % C) * plane + position; // offset of (c, y, x) inside an image
  };
  const xs = new Uint32Array(n * subpixels);
  for (let k = 0; k < n; k++) xs.set(base, k * subpixels);
  for (let q = 0; q < subpixels; q++) {
    const at = (1 + q) * subpixels + order(q);
    xs[at] = (xs[at] + 128) % 256;
  }
  const logits = await E.tidyAsync(async () => {
    const x = E.fromArray(xs, [n, C, S, S], 'u32');
    const features = E.expand(E.fromArray(randomFloats(featureChannels * plane, 2), [1, featureChannels, S, S]), [n, featureChannels, S, S]);
    return E.noGrad(() => m.pixelLogits(x, features)).data();
  });
  const perImage = 256 * subpixels;
  const value = (k: number, v: number, offset: number): number => logits[k * perImage + v * subpixels + offset];
  let leaks = 0;
  let seen = 0;
  for (let q = 0; q < subpixels; q++) {
    for (let p = 0; p < subpixels; p++) {
      let differs = false;
      for (let v = 0; v < 256 && !differs; v++) differs = value(1 + q, v, order(p)) !== value(0, v, order(p));
      if (p <= q && differs) leaks += 1;
      if (p > q && differs) seen += 1;
    }
  }
  expect(leaks).toBe(0);
  expect(seen).toBeGreaterThan(0);
  // Within one pixel: G sees R, B sees R and G (the colour groups of the centre taps).
  const pixel = 3 * S + 3;
  const dependsOn = (p: number, q: number): boolean => {
    for (let v = 0; v < 256; v++) if (value(1 + q, v, order(p)) !== value(0, v, order(p))) return true;
    return false;
  };
  expect(dependsOn(pixel * C + 1, pixel * C + 0)).toBe(true); // G <- R
  expect(dependsOn(pixel * C + 2, pixel * C + 0)).toBe(true); // B <- R
  expect(dependsOn(pixel * C + 2, pixel * C + 1)).toBe(true); // B <- G
  expect(dependsOn((pixel + 1) * C + 0, pixel * C + 2)).toBe(true); // next pixel's R <- B
}

describe('hierarchical PixelVAE (tiny preset)', () => {
  let model: HierarchicalPixelVae;
  beforeAll(() => {
    model = new HierarchicalPixelVae(config);
  });

  it('pixel PixelCNN: a sub-pixel\'s logits never depend on itself or later sub-pixels (raster, then R->G->B)', () =>
    checkPixelCausality(model, config.dims[0]));

  it('the colour masks stay causal when widths are not multiples of 3 (groups are channel index mod 3)', async () => {
    const odd = hierConfig('tiny', { dims: [7, ...config.dims.slice(1)], pixelWidth: 5 });
    const m = new HierarchicalPixelVae(odd);
    await checkPixelCausality(m, odd.dims[0]);
    m.dispose();
  });

  it('latent PixelCNN: p(z1_i | z2) depends only on earlier positions of z1', async () => {
    const l = config.latent1;
    const plane = G1 * G1;
    const n = 1 + plane;
    const base = randomFloats(l * plane, 3);
    const zs = new Float32Array(n * l * plane);
    for (let k = 0; k < n; k++) zs.set(base, k * l * plane);
    for (let q = 0; q < plane; q++) for (let c = 0; c < l; c++) zs[(1 + q) * l * plane + c * plane + q] += 1.5;
    const d = config.dims[config.z1Level];
    const raw = await E.tidyAsync(async () => {
      const z1 = E.fromArray(zs, [n, l, G1, G1]);
      const features = E.expand(E.fromArray(randomFloats(d * plane, 4), [1, d, G1, G1]), [n, d, G1, G1]);
      return E.noGrad(() => model.priorRaw(z1, features)).data();
    });
    const per = 2 * l * plane;
    const changed = (k: number, p: number): boolean => {
      for (let c = 0; c < 2 * l; c++) if (raw[k * per + c * plane + p] !== raw[c * plane + p]) return true;
      return false;
    };
    for (let q = 0; q < plane; q++) {
      for (let p = 0; p <= q; p++) expect(changed(1 + q, p), `position ${p} changed when z1 position ${q} did`).toBe(false);
      // Plain masked convs have a blind spot (up and to the right), so check the left and upper neighbours only.
      if ((q + 1) % G1 !== 0) expect(changed(1 + q, q + 1), `position ${q + 1} should see its left neighbour ${q}`).toBe(true);
      if (q + G1 < plane) expect(changed(1 + q, q + G1), `position ${q + G1} should see the position above it, ${q}`).toBe(true);
    }
  });

  it('in-kernel samplers: inverse CDF over 256 classes and the Gaussian prior step match the float64 references', async () => {
    const n = 5;
    const logitsArr = randomFloats(n * 256 * 2, 5).map((v) => 3 * v);
    const uniforms = Float32Array.from([0, 0.2, 0.5, 0.9, 0.999999, 0.3, 0.1, 0.7, 0.4, 0.6]);
    const [canvas, z] = await E.tidyAsync(async () => {
      const logits = E.fromArray(logitsArr, [n, 256, 2, 1, 1]);
      const u = E.fromArray(uniforms, [n, 2, 1, 1]);
      const out = E.fromArray(new Uint32Array(n * 2), [n, 2, 1, 1], 'u32');
      sampleCategoricalAt(logits, u, out, 0, 1);
      const raw = E.fromArray(Float32Array.from([1, -2, 0.5, 3, 0, 0, -1, 4]), [2, 4, 1, 1]); // L=2: [mu0, mu1, s0, s1] per image
      const eps = E.fromArray(Float32Array.from([0.5, -1, 2, 0.25]), [2, 2, 1, 1]);
      const zt = E.zeros([2, 2, 1, 1]);
      sampleGaussianAt(raw, eps, zt, 0, 0.3);
      return [await out.data(), await zt.data()];
    });
    // Against the float64 references (src/engine/reference/sample.ts; test/samplers.test.ts has more cases).
    const want = R.categoricalDraw(nd([n, 256, 2, 1, 1], logitsArr), nd([n, 2, 1, 1], uniforms));
    for (let b = 0; b < n; b++) {
      expect(canvas[b * 2 + 1]).toBe(want.classes.data[b * 2 + 1]);
      expect(canvas[b * 2]).toBe(0); // the other channel is untouched
    }
    const zWant = R.gaussianDraw(nd([2, 4, 1, 1], [1, -2, 0.5, 3, 0, 0, -1, 4]), nd([2, 2, 1, 1], [0.5, -1, 2, 0.25]), 0.3);
    for (let i = 0; i < 4; i++) expect(z[i]).toBeCloseTo(zWant.data[i], 5);
  });

  it('bits/dim: a case computed by hand (uniform logits, fixed posteriors and prior), with the per-level KL split', async () => {
    const m = new HierarchicalPixelVae(config);
    const gpu = E.engine().gpu;
    const zero = (name: string): void => gpu.write(m.params.get(name).buffer, new Float32Array(m.params.get(name).size));
    // Zero gains: every output layer's weight is 0, so only its bias is left.
    for (const name of ['dec1.pix.out.gain', 'enc1.out.gain', 'enc2.out.gain', 'dec2.pix.out.gain']) zero(name);
    const l1 = config.latent1;
    const priorBias = new Float32Array(2 * l1);
    priorBias.fill(2, 0, l1); // raw mu 2 -> mu_p = 2 softsign(1) = 1; raw sigma 0 -> sigma_p = 1/2
    gpu.write(m.params.get('dec2.pix.out.bias').buffer, priorBias);
    const set = GpuColourSet.upload(toySet(6, 9));
    try {
      const result = await evaluateHier(m, set, { batchSize: 4, seed: 1 });
      // Posteriors: raw 0 -> mu 0, sigma 1/2. Pixels: 256 equal logits -> ln 256 nats = 8 bits each.
      // KL1 per element: log(1/2) - log(1/2) + (1/4 + (0 - 1)^2) / (2 * 1/4) - 1/2 = 2; there are 4x4x4 = 64.
      // KL2 per element: -1/2 (1 + 2 log(1/2) - 0 - 1/4); there are 8. Dimensions per image: 3x8x8 = 192.
      const kl1 = (2 * 64) / 192;
      const kl2 = (8 * -0.5 * (1 + 2 * Math.log(0.5) - 0.25)) / 192;
      expect(result.images).toBe(6);
      expect(result.reconstruction).toBeCloseTo(Math.log(256), 4);
      expect(result.kl1).toBeCloseTo(kl1, 4);
      expect(result.kl2).toBeCloseTo(kl2, 4);
      expect(result.natsPerDim).toBeCloseTo(Math.log(256) + kl1 + kl2, 4);
      expect(result.bitsPerDim).toBeCloseTo(8 + (kl1 + kl2) / Math.LN2, 4);
      // The warm-ups: alpha1, alpha2 and the sigma floor of the reference.
      const warm = hierConfig('tiny', { alpha1Iters: 10, alpha2Iters: 20, betaIters: 4 });
      expect(schedule(warm, 0)).toEqual({ alpha1: 0.1, alpha2: 0.1 * 0.05, sigmaFloor: 1 });
      expect(schedule(warm, 2).sigmaFloor).toBeCloseTo(0.5);
      expect(schedule(warm, 100)).toEqual({ alpha1: 1, alpha2: 1, sigmaFloor: 0 });
    } finally {
      set.dispose();
      m.dispose();
    }
  });

  it('the tiny preset\'s loss falls, the step allocates nothing new after warm-up, and BN re-estimation runs', async () => {
    const m = new HierarchicalPixelVae(config);
    const set = GpuColourSet.upload(toySet(32, 10));
    // Few, small steps: SwiftShader takes seconds per step. The loss starts dominated by KL1 (no
    // sigma-floor warm-up in the tiny preset), which falls within a few steps.
    const trainer = new HierTrainer(m, set, { batchSize: 4, lr: 3e-3, seed: 3 });
    const gpu = E.engine().gpu;
    try {
      const losses: number[] = [];
      let live = 0;
      for (let i = 0; i < 16; i++) {
        trainer.trainStep();
        if (i % 4 === 3) losses.push((await trainer.readMetrics()).loss);
        if (i === 7) live = gpu.stats().liveBuffers;
      }
      expect(gpu.stats().liveBuffers).toBe(live);
      expect(losses.every(Number.isFinite)).toBe(true);
      expect(losses[losses.length - 1]).toBeLessThan(0.8 * losses[0]);
      await trainer.reestimateBatchNorm(2);
      expect(m.bn.training).toBe(false);
      const result = await evaluateHier(m, set, { batchSize: 8, seed: 1, limit: 8 });
      expect(Number.isFinite(result.bitsPerDim)).toBe(true);
      expect(result.reconstruction).toBeLessThan(Math.log(256)); // better than uniform after training on flat colours
    } finally {
      trainer.dispose();
      set.dispose();
      m.dispose();
    }
  }, 300_000);

  it('level-variation grids: held levels are shared exactly within a row, the varied level differs', async () => {
    const rows = 2;
    const cols = 3;
    const l2 = config.latent2;
    const z1Size = config.latent1 * G1 * G1;
    const check = async (vary: Level): Promise<{ z1: Float32Array; z2: Float32Array; images: Uint32Array }> =>
      E.tidyAsync(async () => {
        const noise = model.levelNoise(rows, cols, 77, vary);
        const out = await model.sample(noise);
        return { z1: (await out.z1.data()) as Float32Array, z2: (await out.z2!.data()) as Float32Array, images: (await out.images.data()) as Uint32Array };
      });
    const same = (a: ArrayLike<number>, i: number, j: number, size: number): boolean => {
      for (let k = 0; k < size; k++) if (a[i * size + k] !== a[j * size + k]) return false;
      return true;
    };
    const pixels = await check('pixels');
    const imageSize = C * S * S;
    for (let r = 0; r < rows; r++) {
      for (let c = 1; c < cols; c++) {
        const i = r * cols;
        expect(same(pixels.z2, i, i + c, l2)).toBe(true);
        expect(same(pixels.z1, i, i + c, z1Size)).toBe(true);
        expect(same(pixels.images, i, i + c, imageSize)).toBe(false);
      }
    }
    expect(same(pixels.z2, 0, cols, l2)).toBe(false); // another row, other held noise
    expect(pixels.images.every((v) => v < 256)).toBe(true);
    const middle = await check('middle');
    expect(same(middle.z2, 0, 1, l2)).toBe(true);
    expect(same(middle.z1, 0, 1, z1Size)).toBe(false);
    // Same seed, same held noise: the 'pixels' and 'middle' grids share z2 (top noise drawn per row in both).
    expect(same(Float32Array.from([...middle.z2.subarray(0, l2), ...pixels.z2.subarray(0, l2)]), 0, 1, l2)).toBe(true);
  }, 240_000);

  it('reconstructions keep the encoded level: z2 (then z1 sampled) or z1 (then pixels)', async () => {
    const n = 2;
    const xs = randomInts(n * C * S * S, 12);
    const { mu1, mu2, fromTop, fromMiddle } = await E.tidyAsync(async () => {
      const x = E.fromArray(xs, [n, C, S, S], 'u32');
      const noise = model.levelNoise(n, 1, 5, null);
      model.bn.training = false;
      const q = E.noGrad(() => model.posterior(x));
      const top = await model.reconstruct(x, 'top', noise);
      const middle = await model.reconstruct(x, 'middle', noise);
      return { mu1: await q.mu1.data(), mu2: await q.mu2.data(), fromTop: { z2: await top.z2!.data(), z1: await top.z1.data() }, fromMiddle: { z1: await middle.z1.data(), images: await middle.images.data() } };
    });
    expect(Array.from(fromTop.z2)).toEqual(Array.from(mu2));
    expect(Array.from(fromMiddle.z1)).toEqual(Array.from(mu1));
    expect(Array.from(fromTop.z1)).not.toEqual(Array.from(mu1));
    expect(fromMiddle.images.every((v) => v < 256)).toBe(true);
  });

  it('checkpoints round-trip parameters and batch-norm statistics, and refuse another preset', async () => {
    const set = GpuColourSet.upload(toySet(8, 13));
    try {
      await reestimateBatchNorm(model, set, { batches: 2, batchSize: 4, seed: 1 });
      const bytes = await saveHierCheckpoint(model, { step: 0, seed: 1, batchSize: 4, lr: 1e-3, data: 'toy', trainImages: 8, heldOutImages: 0 });
      const { model: loaded, checkpoint } = loadHierCheckpoint(bytes, 'mem');
      try {
        expect(checkpoint.config.preset).toBe('hier-tiny');
        const a = model.stateTensors();
        const b = loaded.stateTensors();
        expect([...b.keys()]).toEqual([...a.keys()]);
        for (const name of ['enc1.l0.down.bn.running_mean', 'dec1.pix.out.gain']) {
          const key = name.includes('running') ? `buffer/${name}` : name;
          expect(Array.from(await b.get(key)!.data())).toEqual(Array.from(await a.get(key)!.data()));
        }
      } finally {
        loaded.dispose();
      }
      const other = new HierarchicalPixelVae(hierConfig('tiny', { latent1: 2 }));
      try {
        const { loadHierInto } = await import('../src/models/hierarchical/checkpoint');
        const { decodeCheckpoint } = await import('../src/io/checkpoint');
        expect(() => loadHierInto(other, decodeCheckpoint(bytes))).toThrow(/does not fit/);
      } finally {
        other.dispose();
      }
    } finally {
      set.dispose();
    }
  });
});
