// Incremental sampling (src/models/incremental.ts) against the full-recompute sampler, for every
// PixelCNN decoder of the MNIST family: with the same z and uniforms both give the same images, and
// the probabilities each pixel was drawn with agree to float rounding. Parameters are perturbed first
// (random biases and gains) so that every bias, gain and z term matters. Both are also held to the
// float64 reference draw (src/engine/reference/sample.ts) from one decoder pass over the images they
// drew: by causality that pass gives every pixel's logit as it was when the pixel was drawn.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { tinyConfig, type MnistModelConfig, type MnistPreset } from '../src/models/config';
import { MnistModel } from '../src/models/mnist-model';
import { nd } from '../src/engine/reference/ndarray';
import { bernoulliDraw } from '../src/engine/reference/sample';
import { useGpu } from './support/gpu';
import { perturb } from './support/perturb';

beforeAll(async () => {
  await useGpu();
});

interface Comparison {
  full: { images: Float32Array; probs: Float32Array };
  incremental: { images: Float32Array; probs: Float32Array };
  /** Logits of one decoder pass over the incremental images (same z), and the uniforms. */
  onePass: Float32Array;
  uniforms: Float32Array;
}

/**
 * The draws against the float64 reference: pixel i = u_i < sigmoid(logit_i), with logit_i from one
 * decoder pass over the drawn images. A pixel whose u lies within 1e-6 of p may go either way.
 */
function expectReferenceDraws(images: Float32Array, probs: Float32Array, onePass: Float32Array, uniforms: Float32Array, label: string): void {
  const shape = [onePass.length];
  const want = bernoulliDraw(nd(shape, onePass), nd(shape, uniforms));
  let worst = 0;
  let ties = 0;
  let differing = 0;
  for (let i = 0; i < images.length; i++) {
    worst = Math.max(worst, Math.abs(probs[i] - want.probs.data[i]));
    if (Math.abs(uniforms[i] - want.probs.data[i]) < 1e-6) ties++;
    else if (images[i] !== want.images.data[i]) differing++;
  }
  expect(worst, `${label}: probabilities vs the float64 reference`).toBeLessThan(1e-5);
  expect(differing, `${label}: pixels unlike the reference draw (${ties} near-ties not counted)`).toBe(0);
  expect(ties).toBeLessThanOrEqual(1);
}

async function compare(model: MnistModel, batch: number, seed: number): Promise<Comparison> {
  const size = model.config.imageSize;
  return E.tidyAsync(async () => {
    const z = model.hasLatent ? E.randomNormal([batch, model.config.latentDim], seed, 1) : null;
    const u = E.randomUniform([batch, 1, size, size], seed, 2);
    const a = model.sample(z, u, undefined, { method: 'full' });
    const b = model.sample(z, u);
    const logits = E.noGrad(() => model.decode(b.images, z));
    const [ai, ap, bi, bp, l, ud] = await Promise.all([a.images.data(), a.probs.data(), b.images.data(), b.probs.data(), logits.data(), u.data()]);
    return {
      full: { images: ai as Float32Array, probs: ap as Float32Array },
      incremental: { images: bi as Float32Array, probs: bp as Float32Array },
      onePass: l as Float32Array,
      uniforms: ud as Float32Array,
    };
  });
}

function expectSameDraws({ full, incremental, onePass, uniforms }: Comparison, label: string): void {
  expectReferenceDraws(full.images, full.probs, onePass, uniforms, `${label}, full`);
  expectReferenceDraws(incremental.images, incremental.probs, onePass, uniforms, `${label}, incremental`);
  let worst = 0;
  let identical = 0;
  for (let i = 0; i < full.probs.length; i++) {
    const d = Math.abs(full.probs[i] - incremental.probs[i]);
    worst = Math.max(worst, d);
    if (full.probs[i] === incremental.probs[i]) identical++;
  }
  expect(worst, `${label}: largest probability difference`).toBeLessThan(1e-5);
  const differing = full.images.reduce((n, v, i) => n + (v === incremental.images[i] ? 0 : 1), 0);
  expect(differing, `${label}: pixels drawn differently (${identical}/${full.probs.length} probabilities bit-identical)`).toBe(0);
  // The draws are not degenerate: both values occur and probabilities vary.
  const ones = full.images.reduce((n, v) => n + v, 0);
  expect(ones).toBeGreaterThan(0);
  expect(ones).toBeLessThan(full.images.length);
}

const SMALL: Partial<MnistModelConfig> = { pixelLayers: 3, pixelWidth: 5, outputWidth: 7, latentDim: 3, decoderDims: [6, 6, 3] };

describe('incremental sampling equals the full-recompute sampler (8x8, odd widths)', () => {
  const cases: [MnistPreset, Partial<MnistModelConfig>][] = [
    ['gated-pixelcnn', { filterSize: 3, inputFilterSize: 5 }],
    ['gated-pixelvae', { filterSize: 5, inputFilterSize: 7 }],
    ['gated-pixelvae-cond', { filterSize: 5, inputFilterSize: 7 }],
    ['gated-pixelvae-cond', { filterSize: 3, inputFilterSize: 3, pixelLayers: 0 }],
    ['pixelcnn', { filterSize: 3, inputFilterSize: 5 }],
    ['pixelvae', { filterSize: 5, inputFilterSize: 7 }],
  ];
  for (const [preset, overrides] of cases) {
    const label = `${preset} (L=${overrides.pixelLayers ?? SMALL.pixelLayers}, k=${overrides.filterSize}, input k=${overrides.inputFilterSize})`;
    it(`${label}: same images, probabilities within 1e-5`, async () => {
      const model = new MnistModel(tinyConfig(preset, { seed: 4, ...SMALL, ...overrides }));
      await perturb(model, 17);
      // 7 images: not a multiple of the images per workgroup.
      expectSameDraws(await compare(model, 7, 3), label);
      model.dispose();
    });
  }
});

describe('incremental sampling at 28x28', () => {
  // The full sampler's 784 passes crash the Dawn worker on lavapipe here (a queue of ~30k dispatches
  // with no wait), so at 28x28 the check uses causality instead: the full sampler draws pixel i as
  // u_i < sigmoid(decode(x_<i))_i, and decode(x)_i depends only on x_<i, so one decoder pass over the
  // incremental images gives the probabilities the full sampler would have used for every pixel.
  // The same draws, pixel by pixel, then follow by induction.
  for (const preset of ['gated-pixelvae-cond', 'pixelvae'] as const) {
    it(`${preset}: every pixel is the float64 reference draw from one decoder pass, probabilities within 1e-5`, async () => {
      const model = new MnistModel(
        tinyConfig(preset, { seed: 6, imageSize: 28, pixelLayers: 2, pixelWidth: 4, outputWidth: 5, filterSize: 5, inputFilterSize: 7, latentDim: 3, decoderDims: [4, 4, 2] }),
      );
      await perturb(model, 23);
      const batch = 3;
      const [images, probs, onePass, uniforms] = await E.tidyAsync(async () => {
        const z = E.randomNormal([batch, model.config.latentDim], 5, 1);
        const u = E.randomUniform([batch, 1, 28, 28], 5, 2);
        const out = model.sample(z, u);
        const again = E.noGrad(() => model.decode(out.images, z));
        return Promise.all([out.images.data(), out.probs.data(), again.data(), u.data()]);
      });
      expectReferenceDraws(images as Float32Array, probs as Float32Array, onePass as Float32Array, uniforms as Float32Array, preset);
      const ones = Array.from(images).reduce((n, v) => n + v, 0);
      expect(ones).toBeGreaterThan(0);
      expect(ones).toBeLessThan(images.length);
      model.dispose();
    });
  }
});
