// The E.1 gated PixelVAE in TensorFlow.js (webgpu backend), built from spec.ts to compute the same
// function as our MnistModel: NHWC activations, conv weights [kh, kw, in, out], linear [in, out],
// transposed conv [k, k, out, in]. Masked taps are multiplied by a constant 0/1 mask (tfjs computes
// them), weight norm W = g v / ||v|| (no epsilon, as ours), Adam with element-wise clipping as ours.
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core alone registers no gradients (the union package @tensorflow/tfjs does); training needs them.
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-webgpu';
import type { MnistModelConfig } from '../../models/config';
import { ADAM, adamStepSize, deinterleaveForGates, encoderConvs, gatedLayers, maskTaps, paramShapes, permute, sizes, type MaskType } from './spec';

export async function initTfjs(): Promise<string> {
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend did not initialise');
  await tf.ready();
  return tf.getBackend();
}

/** Our layout -> tfjs layout, by the parameter's role (its name and rank). */
function toTfjs(name: string, data: Float32Array, shape: number[]): { data: Float32Array; shape: number[] } {
  if (shape.length === 4) return permute(data, shape, [2, 3, 1, 0]); // conv [o,i,h,w] -> [h,w,i,o]; deconv [i,o,h,w] -> [h,w,o,i]
  if (shape.length === 2) return permute(data, shape, [1, 0]); // linear [out, in] -> [in, out]
  if (shape.length !== 1) throw new Error(`tfjs: unexpected rank of ${name}`);
  return { data, shape };
}

export class TfjsE1 {
  readonly vars = new Map<string, tf.Variable>();
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  private readonly masks = new Map<string, tf.Tensor>();
  private t = 0;

  constructor(readonly c: MnistModelConfig, values: ReadonlyMap<string, Float32Array>) {
    for (const p of paramShapes(c)) {
      const value = values.get(p.name);
      if (!value) throw new Error(`tfjs: no value for ${p.name}`);
      const { data, shape } = toTfjs(p.name, deinterleaveForGates(p.name, value, p.shape), p.shape);
      // Unique names: tfjs keeps one registry of variables per page.
      this.vars.set(p.name, tf.variable(tf.tensor(data, shape), true, `e1/${p.name}`));
      this.m.set(p.name, tf.variable(tf.zeros(shape), false, `e1-m/${p.name}`));
      this.v.set(p.name, tf.variable(tf.zeros(shape), false, `e1-v/${p.name}`));
    }
  }

  /** Scalars the model holds (trainable variables only). */
  paramCount(): number {
    let n = 0;
    for (const v of this.vars.values()) n += v.size;
    return n;
  }

  private get(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new Error(`tfjs: no parameter ${name}`);
    return v;
  }

  private mask(kh: number, kw: number, type: MaskType): tf.Tensor {
    const key = `${kh}x${kw}${type}`;
    let m = this.masks.get(key);
    if (!m) {
      m = tf.keep(tf.tensor4d(maskTaps(kh, kw, type), [kh, kw, 1, 1]));
      this.masks.set(key, m);
    }
    return m;
  }

  /** Effective weight of a layer: weight norm over all axes but the output one (last in tfjs), then the mask. */
  private weight(name: string, mask?: MaskType): tf.Tensor {
    const v = this.get(`${name}.weight`);
    let w: tf.Tensor = v;
    if (this.c.weightNorm) {
      const axes = v.rank === 4 ? [0, 1, 2] : [0];
      w = tf.mul(v, tf.div(this.get(`${name}.gain`), tf.sqrt(tf.sum(tf.square(v), axes))));
    }
    const [kh, kw] = v.shape as number[];
    return mask ? tf.mul(w, this.mask(kh, kw, mask)) : w;
  }

  private conv(x: tf.Tensor4D, name: string, stride: 1 | 2, pad: number | [number, number, number, number], mask?: MaskType): tf.Tensor4D {
    const explicit: number | [[number, number], [number, number], [number, number], [number, number]] = typeof pad === 'number' ? pad : [[0, 0], [pad[0], pad[1]], [pad[2], pad[3]], [0, 0]];
    const y = tf.conv2d(x, this.weight(name, mask) as tf.Tensor4D, stride, explicit);
    return tf.add(y, this.get(`${name}.bias`));
  }

  private linear(x: tf.Tensor2D, name: string): tf.Tensor2D {
    return tf.add(tf.matMul(x, this.weight(name) as tf.Tensor2D), this.get(`${name}.bias`));
  }

  /**
   * Ours (PyTorch semantics): stride 2, padding 1, output padding 1, so H -> 2H with out[o] fed from
   * in[i] at o = 2i + k - 1. tfjs 'valid' to 2H + 1 places it at o = 2i + k; dropping the first row and
   * column gives ours exactly.
   */
  private deconv(x: tf.Tensor4D, name: string): tf.Tensor4D {
    const [b, h, w] = x.shape;
    const weight = this.get(`${name}.weight`) as unknown as tf.Tensor4D; // tf.Variable is a Tensor of rank 4 here
    const out = weight.shape[2];
    const full = tf.conv2dTranspose(x, weight, [b, 2 * h + 1, 2 * w + 1, out], 2, 'valid');
    return tf.add(tf.slice(full, [0, 1, 1, 0], [b, 2 * h, 2 * w, out]), this.get(`${name}.bias`));
  }

  /** tanh(first half of the channels) * sigmoid(second half): ours, with the channels reordered at load (deinterleaveForGates). */
  private gate(x: tf.Tensor4D): tf.Tensor4D {
    const [t, s] = tf.split(x, 2, 3);
    return tf.mul(tf.tanh(t), tf.sigmoid(s));
  }

  /** Mean over the batch of -log p(x|z) + KL (alpha = 1): x [B, S, S, 1] binary, noise [B, Z]. */
  loss(x: tf.Tensor4D, noise: tf.Tensor2D): tf.Scalar {
    const c = this.c;
    const s = sizes(c);
    const batch = x.shape[0];
    const zd = c.latentDim;
    // Encoder.
    let h: tf.Tensor4D = x;
    encoderConvs(c).forEach(([name, , , stride], i) => {
      h = tf.relu(this.conv(h, name, stride, 1));
      if (i === 3 && s.quarter !== s.quarterPadded) h = tf.pad(h, [[0, 0], [0, 1], [0, 1], [0, 0]]);
    });
    // Flatten in NCHW order, as ours.
    const stats = this.linear(tf.reshape(tf.transpose(h, [0, 3, 1, 2]), [batch, -1]), 'enc.out');
    const [mu3, ls3] = tf.split(tf.reshape(stats, [batch, zd, 2]), 2, 2);
    const mu = tf.reshape(mu3, [batch, zd]);
    const logSigma = tf.reshape(ls3, [batch, zd]);
    const z = tf.add(mu, tf.mul(noise, tf.exp(logSigma))) as tf.Tensor2D;
    const kl = tf.sum(tf.sub(tf.sub(tf.mul(0.5, tf.add(tf.square(mu), tf.exp(tf.mul(2, logSigma)))), 0.5), logSigma), 1);
    // Upsampling decoder.
    const [d0] = c.decoderDims;
    let f = tf.transpose(tf.reshape(tf.relu(this.linear(z, 'dec.fc')), [batch, d0, s.eighth, s.eighth]), [0, 2, 3, 1]) as tf.Tensor4D;
    f = tf.relu(this.conv(f, 'dec.conv1', 1, 1));
    f = tf.relu(this.conv(f, 'dec.conv2', 1, 1));
    f = tf.relu(this.deconv(f, 'dec.deconv1'));
    f = tf.relu(this.conv(f, 'dec.conv3', 1, 1));
    if (s.quarter !== s.quarterPadded) f = tf.slice(f, [0, 0, 0, 0], [batch, s.quarter, s.quarter, f.shape[3]]);
    f = tf.relu(this.deconv(f, 'dec.deconv2'));
    f = tf.relu(this.conv(f, 'dec.conv4', 1, 1));
    f = tf.relu(this.deconv(f, 'dec.deconv3'));
    f = tf.relu(this.conv(f, 'dec.conv5', 1, 1));
    // Gated PixelCNN on [image, tanh(features)] (the tanh: ours for gated-pixelvae, see MnistModel.latentFeatures).
    const input = tf.concat([x, tf.tanh(f)], 3);
    let v: tf.Tensor4D = input;
    let hs: tf.Tensor4D = input;
    const size = c.imageSize;
    for (const l of gatedLayers(c)) {
      const k = Math.floor(l.k / 2);
      // Vertical stack over H + 1 rows (a zero row on top): row r is the stack at image row r - 1.
      const vpre = this.conv(v, `${l.name}.vstack`, 1, [k + 1, k, k, k], 'vstack');
      const v2h = this.conv(tf.slice(vpre, [0, 0, 0, 0], [batch, size, size, vpre.shape[3]]), `${l.name}.v2h`, 1, 0);
      const hgated = this.gate(tf.add(this.conv(hs, `${l.name}.hstack`, 1, [0, 0, k, k], l.hmask), v2h));
      const hout = this.conv(hgated, `${l.name}.h2h`, 1, 0);
      if (l.verticalOutput) v = this.gate(tf.slice(vpre, [0, 1, 0, 0], [batch, size, size, vpre.shape[3]]));
      hs = l.residual ? tf.add(hout, hs) : hout;
    }
    const a = this.gate(this.conv(hs, 'pix.out1', 1, 0));
    const b = this.gate(this.conv(a, 'pix.out2', 1, 0));
    const logits = this.conv(b, 'pix.out3', 1, 0);
    // Bernoulli NLL with logits, summed over pixels: max(l, 0) - l x + log(1 + exp(-|l|)).
    const nll = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, x)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    const reconstruction = tf.sum(nll, [1, 2, 3]);
    return tf.mean(tf.add(reconstruction, kl));
  }

  /** One training step (fresh N(0, I) noise, loss, gradients, clipped Adam); records GPU work, reads nothing back. */
  trainStep(x: tf.Tensor4D): void {
    this.t += 1;
    const stepSize = adamStepSize(this.t);
    tf.tidy(() => {
      const noise = tf.randomNormal([x.shape[0], this.c.latentDim]) as tf.Tensor2D;
      const { grads } = tf.variableGrads(() => this.loss(x, noise), [...this.vars.values()]);
      for (const [name, p] of this.vars) {
        const g = tf.clipByValue(grads[p.name], -ADAM.clip, ADAM.clip);
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        m.assign(tf.add(tf.mul(m, ADAM.beta1), tf.mul(g, 1 - ADAM.beta1)));
        v.assign(tf.add(tf.mul(v, ADAM.beta2), tf.mul(tf.square(g), 1 - ADAM.beta2)));
        p.assign(tf.sub(p, tf.mul(stepSize, tf.div(m, tf.add(tf.sqrt(v), ADAM.eps)))));
      }
    });
  }

  /** Waits until every queued step has run (reads one updated parameter). */
  async drain(): Promise<void> {
    const last = [...this.vars.values()].at(-1)!;
    await last.data();
  }

  dispose(): void {
    for (const map of [this.vars, this.m, this.v]) for (const v of map.values()) v.dispose();
    for (const m of this.masks.values()) m.dispose();
  }
}
