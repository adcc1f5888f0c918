// The E.1 gated PixelVAE in jax-js (webgpu device, jit-compiled), built from spec.ts to compute the
// same function as our MnistModel: NCHW activations and conv weights [out, in, kh, kw] as ours, linear
// weights stored [in, out], transposed convs stored as the equivalent plain conv's kernel (channels
// swapped, taps flipped) run on the input dilated by 2. Masked taps are multiplied by a constant 0/1
// mask. jax-js counts references: every array passed to an op is consumed, so a value used twice is
// passed as `.ref` first (see its README).
import { blockUntilReady, defaultDevice, init, jit, lax, nn, numpy as np, random, tree, valueAndGrad } from '@jax-js/jax';
import type { MnistModelConfig } from '../../models/config';
import { ADAM, adamStepSize, deinterleaveForGates, encoderConvs, flipSpatial, gatedLayers, maskTaps, paramShapes, permute, sizes, type MaskType } from './spec';

type Arr = np.Array;
/** Parameters (and Adam moments) by our names: a jax-js pytree. */
type Params = { [name: string]: Arr };

export async function initJax(): Promise<void> {
  const devices = await init('webgpu');
  if (!devices.includes('webgpu')) throw new Error('jax-js: the webgpu device did not initialise');
  defaultDevice('webgpu');
}

/** Our layout -> the layout the jax-js forward reads. */
function toJax(name: string, data: Float32Array, shape: number[]): { data: Float32Array; shape: number[] } {
  if (name.startsWith('dec.deconv') && name.endsWith('.weight')) {
    // [in, out, k, k] -> [out, in, k, k] with the taps flipped: the plain conv over the dilated input.
    const swapped = permute(data, shape, [1, 0, 2, 3]);
    return { data: flipSpatial(swapped.data, swapped.shape), shape: swapped.shape };
  }
  if (shape.length === 2) return permute(data, shape, [1, 0]); // linear [out, in] -> [in, out]
  return { data, shape };
}

function sumAll(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The loss (mean over the batch of -log p(x|z) + KL, alpha = 1) as a pure function of params, x [B,1,S,S] and noise [B,Z]. */
export function lossFunction(c: MnistModelConfig): (p: Params, x: Arr, noise: Arr) => Arr {
  const s = sizes(c);
  const size = c.imageSize;
  const zd = c.latentDim;
  const convLayer = (p: Params, h: Arr, name: string, stride: 1 | 2, pad: [number, number, number, number], mask?: MaskType): Arr => {
    let w = p[`${name}.weight`];
    const [, , kh, kw] = w.shape;
    if (c.weightNorm) {
      const norm = np.sqrt(np.square(w.ref).sum([1, 2, 3], { keepdims: true }));
      w = w.mul(p[`${name}.gain`].reshape([-1, 1, 1, 1]).div(norm));
    }
    // The mask is a constant of the traced function (built once per compilation).
    if (mask) w = w.mul(np.array(maskTaps(kh, kw, mask), { shape: [1, 1, kh, kw] }));
    const y = lax.convGeneralDilated(h, w, [stride, stride], [[pad[0], pad[1]], [pad[2], pad[3]]]);
    return y.add(p[`${name}.bias`].reshape([1, -1, 1, 1]));
  };
  const linear = (p: Params, h: Arr, name: string): Arr => {
    let w = p[`${name}.weight`]; // [in, out]
    if (c.weightNorm) {
      const norm = np.sqrt(np.square(w.ref).sum(0, { keepdims: true }));
      w = w.mul(p[`${name}.gain`].reshape([1, -1]).div(norm));
    }
    return np.matmul(h, w).add(p[`${name}.bias`].reshape([1, -1]));
  };
  // Ours: stride 2, padding 1, output padding 1 (H -> 2H): a 3x3 conv over the input dilated by 2 and
  // padded k-1-p = 1 before and 1 + output padding = 2 after.
  const deconv = (p: Params, h: Arr, name: string): Arr => {
    const y = lax.convGeneralDilated(h, p[`${name}.weight`], [1, 1], [[1, 2], [1, 2]], { lhsDilation: [2, 2] });
    return y.add(p[`${name}.bias`].reshape([1, -1, 1, 1]));
  };
  // tanh(first half of the channels) * sigmoid(second half): ours, with the channels reordered at load (deinterleaveForGates).
  const gate = (h: Arr): Arr => {
    const half = h.shape[1] / 2;
    const t = h.ref.slice([], [0, half]);
    const g = h.slice([], [half, 2 * half]);
    return np.tanh(t).mul(nn.sigmoid(g));
  };
  return (p: Params, x: Arr, noise: Arr): Arr => {
    const batch = x.shape[0];
    let h = x.ref;
    encoderConvs(c).forEach(([name, , , stride], i) => {
      h = nn.relu(convLayer(p, h, name, stride, [1, 1, 1, 1]));
      if (i === 3 && s.quarter !== s.quarterPadded) h = np.pad(h, [[0, 0], [0, 0], [0, 1], [0, 1]]);
    });
    const stats = linear(p, h.reshape([batch, -1]), 'enc.out').reshape([batch, zd, 2]);
    const mu = stats.ref.slice([], [], 0);
    const logSigma = stats.slice([], [], 1);
    const z = mu.ref.add(noise.mul(np.exp(logSigma.ref)));
    const kl = np.square(mu).add(np.exp(logSigma.ref.mul(2))).mul(0.5).sub(0.5).sub(logSigma).sum(1);
    const [d0] = c.decoderDims;
    let f = nn.relu(linear(p, z, 'dec.fc')).reshape([batch, d0, s.eighth, s.eighth]);
    f = nn.relu(convLayer(p, f, 'dec.conv1', 1, [1, 1, 1, 1]));
    f = nn.relu(convLayer(p, f, 'dec.conv2', 1, [1, 1, 1, 1]));
    f = nn.relu(deconv(p, f, 'dec.deconv1'));
    f = nn.relu(convLayer(p, f, 'dec.conv3', 1, [1, 1, 1, 1]));
    if (s.quarter !== s.quarterPadded) f = f.slice([], [], [0, s.quarter], [0, s.quarter]);
    f = nn.relu(deconv(p, f, 'dec.deconv2'));
    f = nn.relu(convLayer(p, f, 'dec.conv4', 1, [1, 1, 1, 1]));
    f = nn.relu(deconv(p, f, 'dec.deconv3'));
    f = nn.relu(convLayer(p, f, 'dec.conv5', 1, [1, 1, 1, 1]));
    // Gated PixelCNN on [image, tanh(features)] (the tanh: ours for gated-pixelvae).
    const input = np.concatenate([x.ref, np.tanh(f)], 1);
    let v: Arr | null = input.ref;
    let hs = input;
    for (const l of gatedLayers(c)) {
      const k = Math.floor(l.k / 2);
      // Vertical stack over H + 1 rows (a zero row on top): row r is the stack at image row r - 1.
      const vpre: Arr = convLayer(p, v!, `${l.name}.vstack`, 1, [k + 1, k, k, k], 'vstack');
      const v2h = convLayer(p, vpre.ref.slice([], [], [0, size]), `${l.name}.v2h`, 1, [0, 0, 0, 0]);
      const hgated = gate(convLayer(p, l.residual ? hs.ref : hs, `${l.name}.hstack`, 1, [0, 0, k, k], l.hmask).add(v2h));
      const hout = convLayer(p, hgated, `${l.name}.h2h`, 1, [0, 0, 0, 0]);
      if (l.verticalOutput) v = gate(vpre.slice([], [], [1, size + 1]));
      else {
        vpre.dispose();
        v = null;
      }
      hs = l.residual ? hout.add(hs) : hout;
    }
    const a = gate(convLayer(p, hs, 'pix.out1', 1, [0, 0, 0, 0]));
    const b = gate(convLayer(p, a, 'pix.out2', 1, [0, 0, 0, 0]));
    const logits = convLayer(p, b, 'pix.out3', 1, [0, 0, 0, 0]);
    // Bernoulli NLL with logits, summed over pixels: max(l, 0) - l x + log(1 + exp(-|l|)).
    const nll = nn.relu(logits.ref).sub(logits.ref.mul(x)).add(np.log1p(np.exp(np.abs(logits).neg())));
    return nll.sum([1, 2, 3]).add(kl).mean();
  };
}

function compileLoss(c: MnistModelConfig) {
  return jit(lossFunction(c));
}

/** One compiled step: loss, gradients, clipped Adam; the new parameters and moments come back. */
function compileStep(c: MnistModelConfig, names: readonly string[]) {
  const loss = lossFunction(c);
  return jit((p: Params, m: Params, v: Params, x: Arr, noise: Arr, stepSize: Arr): [Params, Params, Params, Arr] => {
    // p is read again by the update below: the gradient call gets its own references.
    const [value, grads] = valueAndGrad(loss)(tree.ref(p), x, noise);
    const np2: Params = {};
    const nm: Params = {};
    const nv: Params = {};
    for (const name of names) {
      const g = np.clip(grads[name], -ADAM.clip, ADAM.clip);
      const m1 = m[name].mul(ADAM.beta1).add(g.ref.mul(1 - ADAM.beta1));
      const v1 = v[name].mul(ADAM.beta2).add(np.square(g).mul(1 - ADAM.beta2));
      np2[name] = p[name].sub(m1.ref.mul(stepSize.ref).div(np.sqrt(v1.ref).add(ADAM.eps)));
      nm[name] = m1;
      nv[name] = v1;
    }
    stepSize.dispose();
    return [np2, nm, nv, value];
  });
}

export class JaxE1 {
  private params: Params = {};
  private m: Params = {};
  private v: Params = {};
  private t = 0;
  private readonly lossJit: ReturnType<typeof compileLoss>;
  private readonly stepJit: ReturnType<typeof compileStep>;

  constructor(readonly c: MnistModelConfig, values: ReadonlyMap<string, Float32Array>) {
    const shapes = paramShapes(c);
    for (const p of shapes) {
      const value = values.get(p.name);
      if (!value) throw new Error(`jax-js: no value for ${p.name}`);
      const { data, shape } = toJax(p.name, deinterleaveForGates(p.name, value, p.shape), p.shape);
      this.params[p.name] = np.array(data, { shape });
      this.m[p.name] = np.zeros(shape);
      this.v[p.name] = np.zeros(shape);
    }
    this.lossJit = compileLoss(c);
    this.stepJit = compileStep(c, shapes.map((p) => p.name));
  }

  paramCount(): number {
    return Object.values(this.params).reduce((n, a) => n + sumAll(a.shape), 0);
  }

  /** The loss of one batch with the current parameters (x [B,1,S,S], noise [B,Z]); arguments are kept. */
  loss(x: Arr, noise: Arr): Arr {
    return this.lossJit(tree.ref(this.params), x.ref, noise.ref);
  }

  /** One training step with fresh N(0, I) noise; records GPU work, reads nothing back. */
  trainStep(x: Arr): void {
    this.t += 1;
    const noise = random.normal(random.key(this.t), [x.shape[0], this.c.latentDim]);
    const [p, m, v, value] = this.stepJit(this.params, this.m, this.v, x.ref, noise, np.array([adamStepSize(this.t)]));
    value.dispose();
    this.params = p;
    this.m = m;
    this.v = v;
  }

  async drain(): Promise<void> {
    await blockUntilReady([this.params, this.m, this.v]);
  }

  dispose(): void {
    tree.dispose([this.params, this.m, this.v]);
    this.lossJit.dispose();
    this.stepJit.dispose();
  }
}
