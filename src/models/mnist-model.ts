// A model of the MNIST family: parameters, the loss (negative ELBO with KL warm-up, in nats per
// image), importance-sampled NLL, sampling and reconstruction. Everything runs on the GPU.
import sampleWgsl from '../../shaders/sample.wgsl?raw';
import * as E from '../engine';
import { Params, launch, threadsGrid } from '../engine/kernels';
import type { KernelSpec } from '../gpu/context';
import { Conv2d } from '../nn/layers';
import { ParamSet } from '../nn/params';
import { hasLatent, validateConfig, type MnistModelConfig } from './config';
import { Encoder, GatedPixelCnn, MaskedPixelCnn, UpsamplingDecoder } from './networks';
import { sampleIncremental } from './incremental';

/** Added to the features' mean square before the root ('rms-tanh'): an image whose ReLU features are all 0 stays 0. */
const FEATURE_RMS_EPS = 1e-6;

const SAMPLE_SPEC: KernelSpec = { name: 'sample.wgsl', code: sampleWgsl, entry: 'bernoulli_at', bindings: ['read', 'read', 'rw', 'rw'] };

export interface LossTerms {
  /** Mean over the batch of reconstruction + alpha * KL (what is minimised). */
  loss: E.Tensor;
  /** Per-image -log p(x|z) in nats, [B]. */
  reconstruction: E.Tensor;
  /** Per-image KL(q(z|x) || N(0, I)) in nats, [B] (zeros for models without a latent). */
  kl: E.Tensor;
}

export class MnistModel {
  readonly params: ParamSet;
  private readonly encoder: Encoder | null;
  private readonly upsampler: UpsamplingDecoder | null;
  private readonly gated: GatedPixelCnn | null = null;
  private readonly masked: MaskedPixelCnn | null = null;
  private readonly vaeHead: Conv2d | null = null;

  constructor(readonly config: MnistModelConfig) {
    validateConfig(config);
    this.params = new ParamSet(config.seed);
    const c = config;
    this.encoder = hasLatent(c.preset) ? new Encoder(this.params, c) : null;
    this.upsampler = c.preset === 'conv-vae' || c.preset === 'pixelvae' || c.preset === 'gated-pixelvae' ? new UpsamplingDecoder(this.params, c) : null;
    const features = this.upsampler?.outChannels ?? 0;
    switch (c.preset) {
      case 'conv-vae':
        this.vaeHead = new Conv2d(this.params, 'dec.out', { in: features, out: 1, kernel: 1, weightNorm: c.weightNorm, he: false });
        break;
      case 'pixelcnn':
        this.masked = new MaskedPixelCnn(this.params, c, 1);
        break;
      case 'pixelvae':
        this.masked = new MaskedPixelCnn(this.params, c, 1 + features);
        break;
      case 'gated-pixelcnn':
        this.gated = new GatedPixelCnn(this.params, c, 1, false);
        break;
      case 'gated-pixelvae':
        this.gated = new GatedPixelCnn(this.params, c, 1 + features, false);
        break;
      case 'gated-pixelvae-cond':
        this.gated = new GatedPixelCnn(this.params, c, 1, true);
        break;
    }
  }

  get hasLatent(): boolean {
    return this.encoder !== null;
  }

  /** True when pixels are generated one at a time (a PixelCNN decoder). */
  get isAutoregressive(): boolean {
    return this.vaeHead === null;
  }

  encode(x: E.Tensor): { mu: E.Tensor; logSigma: E.Tensor } {
    if (!this.encoder) throw new Error(`${this.config.preset} has no encoder`);
    return this.encoder.forward(x);
  }

  /**
   * What the decoder computes from z alone (reused across every pass of the pixel loop).
   * Departure from the reference for gated-pixelvae: its ReLU features pass a tanh before they join
   * the gated stacks. Unbounded, they grew 17x in 40 steps (rms 0.6 -> 10.5, width 8, lr 2e-3; 1e-3 only
   * slower), left 92% of the first layer's gate inputs beyond |3|, and the saturated gates passed no
   * gradient: the loss stalled at 302 nats while the same stacks without features reached 174. Bounded,
   * the model trains. The ReLU PixelCNN (pixelvae) does not saturate and keeps the reference's features.
   * The tanh has its own cost: with 1-4 PixelCNN layers the features keep growing until it is flat, and
   * the decoder stops reading z (docs/departures.md, measured with scripts/latent-probe.py).
   * featureNorm 'rms-tanh' divides each image's features by their rms first, so they stay where the
   * tanh has a slope.
   */
  latentFeatures(z: E.Tensor | null): E.Tensor | null {
    if (!this.upsampler || !z) return null;
    const features = this.upsampler.forward(z);
    if (this.config.preset !== 'gated-pixelvae') return features;
    if (this.config.featureNorm === 'tanh') return E.tanh(features);
    const inverseRms = E.rsqrt(E.mean(E.square(features), [1, 2, 3], true), FEATURE_RMS_EPS);
    return E.tanh(E.mul(features, inverseRms));
  }

  /** Logits of p(x_i | x_<i, z) for every pixel, [B, 1, S, S], given the image (or canvas) x. */
  decode(x: E.Tensor, z: E.Tensor | null, features: E.Tensor | null = this.latentFeatures(z)): E.Tensor {
    const c = this.config.preset;
    if (this.vaeHead) return this.vaeHead.forward(features!);
    const input = features ? E.concat([x, features], 1) : x; // image first, as the reference
    if (this.masked) return this.masked.forward(input);
    return this.gated!.forward(input, c === 'gated-pixelvae-cond' ? z : null);
  }

  /** KL warm-up weight at a training step: min(1, step / warmup), 0 at step 0 as in the reference. */
  klWeight(step: number): number {
    const w = this.config.klWarmupSteps;
    return w <= 0 ? 1 : Math.min(1, step / w);
  }

  /** The training objective for binary images x [B,1,S,S]; `noise` is N(0, I) [B, Z] for the reparameterisation. */
  loss(x: E.Tensor, noise: E.Tensor | null, klWeight: number): LossTerms {
    const batch = x.shape[0];
    let z: E.Tensor | null = null;
    let kl: E.Tensor;
    if (this.encoder) {
      if (!noise) throw new Error('loss: a latent model needs noise for z');
      // z and the KL from the encoder's statistics in one fused op (the same values as slicing mu and
      // log sigma, mu + noise * exp(log sigma) and klStandardNormal).
      const latent = E.gaussianLatent(this.encoder.statistics(x), noise);
      z = latent.z;
      kl = E.sum(latent.kl, 1);
    } else {
      kl = E.zeros([batch]);
    }
    const logits = this.decode(x, z);
    const reconstruction = E.bernoulliNll(logits, x);
    const total = klWeight === 0 || !this.encoder ? reconstruction : E.add(reconstruction, E.scale(kl, klWeight));
    return { loss: E.mean(total), reconstruction, kl };
  }

  /**
   * Importance-sampled log-likelihood bound pieces for x [B,1,S,S] with k samples per image:
   * returns the per-image NLL estimate (nats) -(logsumexp_k log w_k - log k) with
   * log w = log N(z; 0, I) + log p(x|z) - log q(z|x); the per-image negative ELBO (reconstruction
   * averaged over the k samples, KL analytic); and -mean_k log w_k. `noise` is N(0, I) [k*B, Z].
   */
  importanceNll(x: E.Tensor, k: number, noise: E.Tensor): { nll: E.Tensor; negElbo: E.Tensor; negElboSameSamples: E.Tensor; kl: E.Tensor } {
    const batch = x.shape[0];
    const size = this.config.imageSize;
    if (!this.encoder) {
      // No latent: the likelihood is exact, and equal to the bound.
      const logits = this.decode(x, null);
      const nll = E.bernoulliNll(logits, x);
      return { nll, negElbo: nll, negElboSameSamples: nll, kl: E.zeros([batch]) };
    }
    const zd = this.config.latentDim;
    const { mu, logSigma } = this.encoder.forward(x);
    const eps = noise.view([k, batch, zd]);
    const z = E.add(E.expand(mu.view([1, batch, zd]), [k, batch, zd]), E.mul(eps, E.exp(logSigma).view([1, batch, zd])));
    const zFlat = z.view([k * batch, zd]);
    const xTiled = E.expand(x.view([1, batch, 1, size, size]), [k, batch, 1, size, size]).view([k * batch, 1, size, size]);
    const logPx = E.neg(E.bernoulliNll(this.decode(xTiled, zFlat), xTiled)).view([k, batch]);
    const zero = E.zeros([1]);
    const logPz = E.sum(E.gaussianLogDensity(z, zero, zero), 2);
    const logQz = E.sum(E.gaussianLogDensity(z, E.expand(mu.view([1, batch, zd]), [k, batch, zd]), E.expand(logSigma.view([1, batch, zd]), [k, batch, zd])), 2);
    const logW = E.add(E.sub(logPz, logQz), logPx); // [k, B]
    // logsumexp over k: x_0 - logSoftmax(x)_0 (stable, and one kernel).
    const first = E.slice(logW, [0, 0], [1, batch]).view([batch]);
    const lse = E.sub(first, E.slice(E.logSoftmax(logW, 0), [0, 0], [1, batch]).view([batch]));
    const nll = E.neg(E.addScalar(lse, -Math.log(k)));
    // The bound with the same samples: -(mean_k log p(x|z_k)) + KL(q || p), KL analytic.
    const kl = E.sum(E.klStandardNormal(mu, logSigma), 1);
    const negElbo = E.add(E.neg(E.mean(logPx, 0)), kl);
    // -mean_k log w_k: the Monte Carlo bound from the very samples of the NLL estimate, so by Jensen
    // the estimate never exceeds it (a check on the arithmetic, image by image).
    const negElboSameSamples = E.neg(E.mean(logW, 0));
    return { nll, negElbo, negElboSameSamples, kl };
  }

  /**
   * Samples images on the GPU: `z` [B, Z] (ignored without a latent) and `uniforms` [B,1,S,S] in
   * [0,1) drawn up front (the seed decides both). Autoregressive models sample pixel by pixel, each
   * pixel in-kernel, nothing read back: by default incrementally (incremental.ts: each layer only
   * where the new pixel changes it), or with method 'full' one whole decoder pass per pixel (the
   * reference's sampler; the same draws). Returns { images, probs }.
   */
  sample(z: E.Tensor | null, uniforms: E.Tensor, canvasInit?: E.Tensor, options: { method?: 'incremental' | 'full' } = {}): { images: E.Tensor; probs: E.Tensor } {
    const [batch, , size] = uniforms.shape;
    const net = this.gated ?? this.masked;
    if (net && (options.method ?? 'incremental') === 'incremental') {
      // Every pixel is drawn, so a canvas to start from changes nothing (each draw sees only earlier pixels).
      return E.noGrad(() => E.tidy(() => sampleIncremental({ net, z: this.config.preset === 'gated-pixelvae-cond' ? z : null, features: this.latentFeatures(z), uniforms })));
    }
    return E.noGrad(() => {
      const canvas = canvasInit ?? E.zeros([batch, 1, size, size]);
      const probs = E.zeros([batch, 1, size, size]);
      const features = E.keep(this.latentFeatures(z) ?? E.zeros([1]));
      const hasFeatures = features.size > 1;
      const plane = size * size;
      if (!this.isAutoregressive) {
        E.tidy(() => {
          const logits = this.decode(canvas, z, features);
          sampleAt(logits, uniforms, canvas, probs, batch, plane, 0, true);
        });
      } else {
        for (let position = 0; position < plane; position++) {
          E.tidy(() => {
            const logits = this.decode(canvas, z, hasFeatures ? features : null);
            sampleAt(logits, uniforms, canvas, probs, batch, plane, position, false);
          });
        }
      }
      features.dispose();
      return { images: canvas, probs };
    });
  }

  /** Multiply-adds per image of one forward pass (encoder + decoder), masked taps skipped. */
  macsPerImage(): number {
    return (this.encoder?.macs() ?? 0) + (this.upsampler?.macs() ?? 0) + (this.gated?.macs() ?? 0) + (this.masked?.macs() ?? 0) + (this.vaeHead?.macs(this.config.imageSize, this.config.imageSize) ?? 0);
  }

  dispose(): void {
    this.params.dispose();
  }
}

function sampleAt(logits: E.Tensor, uniforms: E.Tensor, canvas: E.Tensor, probs: E.Tensor, batch: number, plane: number, position: number, all: boolean): void {
  const params = new Params().u(batch, plane, position, all ? 1 : 0).build();
  launch(SAMPLE_SPEC, [logits.buffer, uniforms.buffer, canvas.buffer, probs.buffer], params, threadsGrid(all ? batch * plane : batch, 64));
}
