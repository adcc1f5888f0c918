// Weights that make sampler tests sensitive: a model's initial zero biases and unit-ratio gains would
// hide a kernel that drops a bias or misapplies weight norm.
import type { ParamSet } from '../../src/nn/params';

/** Random biases in [-0.5, 0.5) and gains scaled by [0.6, 1.4), from a seed. */
export async function perturb(model: { params: ParamSet }, seed: number): Promise<void> {
  let s = seed >>> 0;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const values = new Map<string, Float32Array>();
  for (const [name, t] of model.params.entriesList()) {
    const v = Float32Array.from(await t.data());
    if (name.endsWith('.bias')) for (let i = 0; i < v.length; i++) v[i] = rand() - 0.5;
    else if (name.endsWith('.gain')) for (let i = 0; i < v.length; i++) v[i] *= 0.6 + 0.8 * rand();
    values.set(name, v);
  }
  model.params.assign(values);
}
