// Whole-model gradient checks: for every preset, the tape's gradient of the loss with respect to a
// sample of parameters (encoder, decoder and PixelCNN alike) matches central finite differences of
// the loss computed by the same engine (float32, so the tolerance is loose; a missing or wrong path
// through any layer still shows), and no parameter is left without a gradient.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { MNIST_PRESETS, tinyConfig } from '../src/models/config';
import { MnistModel } from '../src/models/mnist-model';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

describe('model gradients', () => {
  for (const preset of MNIST_PRESETS) {
    it(`${preset}: loss gradients match finite differences`, async () => {
      const model = new MnistModel(tinyConfig(preset, { seed: 4 }));
      // Biases start at zero, so a unit whose inputs are all zero sits exactly on its ReLU kink, where
      // the tape takes one side and a central difference averages both. Random biases avoid that.
      for (const [name, t] of model.params.entriesList()) {
        if (name.endsWith('.bias')) E.engine().gpu.write(t.buffer, Float32Array.from({ length: t.size }, (_, i) => 0.1 * Math.sin(7 * i + name.length)));
      }
      const x = E.keep(E.bernoulli(E.fill([3, 1, 8, 8], 0.35), 2, 0));
      const noise = model.hasLatent ? E.keep(E.randomNormal([3, model.config.latentDim], 3, 0)) : null;
      const lossValue = (): Promise<number> => E.tidyAsync(() => E.noGrad(() => model.loss(x, noise, 1).loss).item());
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
        // difference quotient has converged), and require most samples to be comparable.
        // The loss is a float32 sum of ~100 nats, good to ~1e-5, so steps below 1e-3 drown in rounding.
        const coarse = await central(3e-3);
        const fine = await central(1e-3);
        if (Math.abs(coarse - fine) > 0.05 * Math.abs(fine) + 1e-2) {
          skipped += 1;
          continue;
        }
        compared += 1;
        if (Math.abs(fine - g[k]) > 0.05 * Math.abs(g[k]) + 3e-2) bad.push(`${name}[${k}]: tape ${g[k].toFixed(5)}, finite difference ${fine.toFixed(5)}`);
      }
      expect(compared, `${skipped} samples sat on a kink`).toBeGreaterThanOrEqual(Math.max(skipped, 4));
      expect(bad).toEqual([]);
      x.dispose();
      noise?.dispose();
      model.dispose();
    });
  }
});
