// Whole-model gradient checks: for every preset, the tape's gradient of the loss with respect to a
// sample of parameters (encoder, decoder and PixelCNN alike) matches central finite differences of
// the loss (the networks on the GPU, its head summed in float64 so the difference quotient is not
// quantised by float32 rounding of the sum), and no parameter is left without a gradient.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { MNIST_PRESETS, tinyConfig, type MnistModelConfig, type MnistPreset } from '../src/models/config';
import { MnistModel } from '../src/models/mnist-model';
import { nd } from '../src/engine/reference/ndarray';
import { klStandardNormal } from '../src/engine/reference/gaussian';
import { bernoulliNll } from '../src/engine/reference/loss';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

/**
 * The training loss (alpha = 1) with its head in float64: the networks run on the GPU (encoder
 * outputs, z = mu + noise sigma, decoder logits), the per-pixel cross-entropies, the KL and the sums
 * are float64 (src/engine/reference). A float32 sum of a ~44-nat loss is quantised to its ulp
 * (3.8e-6), which a difference quotient over 2h = 2e-3 turns into steps of ~2e-3; summed in float64
 * only the rounding of the logits themselves is left.
 */
async function lossInFloat64(model: MnistModel, x: E.Tensor, noise: E.Tensor | null): Promise<number> {
  const [xs, logits, mu, logSigma] = await E.tidyAsync(async () => {
    const outs = E.noGrad(() => {
      if (!model.hasLatent) return [x, model.decode(x, null)];
      const q = model.encode(x);
      const z = E.add(q.mu, E.mul(noise!, E.exp(q.logSigma)));
      return [x, model.decode(x, z), q.mu, q.logSigma];
    });
    return Promise.all(outs.map((t) => t.data()));
  });
  const batch = x.shape[0];
  const rec = bernoulliNll(nd([batch, logits.length / batch], logits), nd([batch, xs.length / batch], xs));
  let total = rec.data.reduce((a, v) => a + v, 0);
  if (mu && logSigma) total += klStandardNormal(nd([mu.length], mu), nd([mu.length], logSigma)).data.reduce((a, v) => a + v, 0);
  return total / batch;
}

/** Every preset, and gated-pixelvae with its features divided by their rms before the tanh. */
const CASES: [string, MnistPreset, Partial<MnistModelConfig>][] = [
  ...MNIST_PRESETS.map((preset): [string, MnistPreset, Partial<MnistModelConfig>] => [preset, preset, {}]),
  ['gated-pixelvae (rms-tanh features)', 'gated-pixelvae', { featureNorm: 'rms-tanh' }],
];

describe('model gradients', () => {
  for (const [name, preset, overrides] of CASES) {
    it(`${name}: loss gradients match finite differences`, async () => {
      const model = new MnistModel(tinyConfig(preset, { seed: 4, ...overrides }));
      // Biases start at zero, so a unit whose inputs are all zero sits exactly on its ReLU kink, where
      // the tape takes one side and a central difference averages both. Random biases avoid that.
      for (const [param, t] of model.params.entriesList()) {
        if (param.endsWith('.bias')) E.engine().gpu.write(t.buffer, Float32Array.from({ length: t.size }, (_, i) => 0.1 * Math.sin(7 * i + param.length)));
      }
      const x = E.keep(E.bernoulli(E.fill([3, 1, 8, 8], 0.35), 2, 0));
      const noise = model.hasLatent ? E.keep(E.randomNormal([3, model.config.latentDim], 3, 0)) : null;
      const lossValue = (): Promise<number> => lossInFloat64(model, x, noise);
      // The float64 head computes the model's own loss (to float32 rounding of the GPU's sums).
      const gpuLoss = await E.tidyAsync(() => E.noGrad(() => model.loss(x, noise, 1).loss).item());
      expect(Math.abs((await lossValue()) - gpuLoss)).toBeLessThan(1e-4);
      const params = model.params.entriesList();
      const grads = await E.tidyAsync(async () => {
        const g = E.grad(model.loss(x, noise, 1).loss, params.map(([, t]) => t));
        return Promise.all(g.map((t) => (t ? t.data() : Promise.resolve(null))));
      });
      // Every parameter that can influence the loss gets a gradient.
      const missing = params.filter((_, i) => grads[i] === null).map(([name]) => name);
      expect(missing).toEqual([]);
      // Finite differences on the largest-gradient entry of a spread of tensors (names include enc.* and dec.*/pix.*).
      const picks = params.map((p, i) => [p, i] as const).filter((_, i) => i % 2 === 0);
      const gpu = E.engine().gpu;
      const bad: string[] = [];
      let compared = 0;
      let skipped = 0;
      for (const [[name, t], i] of picks) {
        const g = grads[i]!;
        let k = 0;
        for (let j = 1; j < g.length; j++) if (Math.abs(g[j]) > Math.abs(g[k])) k = j;
        if (Math.abs(g[k]) < 5e-2) continue;
        const values = (await t.data()) as Float32Array;
        const original = values[k];
        const central = async (h: number): Promise<number> => {
          values[k] = original + h;
          gpu.write(t.buffer, values);
          const up = await lossValue();
          values[k] = original - h;
          gpu.write(t.buffer, values);
          const down = await lossValue();
          values[k] = original;
          gpu.write(t.buffer, values);
          return (up - down) / (2 * h);
        };
        // ReLU kinks make the loss piecewise smooth: compare only where two step sizes agree (the
        // difference quotient has converged), and require most samples to be comparable (measured:
        // 4 of 158 samples over the six presets are skipped).
        const coarse = await central(3e-3);
        let fine = await central(1e-3);
        if (Math.abs(coarse - fine) > 0.05 * Math.abs(fine) + 1e-3) {
          skipped += 1;
          continue;
        }
        compared += 1;
        // Measured on lavapipe over 154 compared samples: absolute error at most 1.6e-4 where
        // |g| < 0.1 and 8.4e-4 where |g| < 1 (the logits' float32 rounding); relative error at most
        // 1.3% (decoder biases with large gradients, whose +-1e-3 steps cross ReLU kinks). So 2% + 5e-4:
        // at the smallest gradient compared (0.05) a 3% error fails.
        const tolerance = 0.02 * Math.abs(g[k]) + 5e-4;
        if (Math.abs(fine - g[k]) > tolerance) {
          // A bias that moves a whole feature map still crosses kinks at +-1e-3 (with rms-tanh features
          // every pixel's kink moves every feature of the image): look again with steps 3 and 10 times
          // smaller, where the quotient has converged if the two agree.
          const finer = await central(3e-4);
          const finest = await central(1e-4);
          if (Math.abs(finer - finest) <= 0.01 * Math.abs(finest) + 1e-3) fine = finer;
        }
        if (Math.abs(fine - g[k]) > tolerance) bad.push(`${name}[${k}]: tape ${g[k].toFixed(5)}, finite difference ${fine.toFixed(5)}`);
      }
      expect(compared, `${skipped} samples sat on a kink`).toBeGreaterThanOrEqual(Math.max(skipped, 4));
      expect(bad).toEqual([]);
      x.dispose();
      noise?.dispose();
      model.dispose();
    });
  }
});
