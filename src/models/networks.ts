// The networks of the MNIST model family (pixelvae-reference.md, 1.3-1.5): the conv encoder, the
// upsampling decoder, the blind-spot PixelCNN and the gated two-stack PixelCNN (optionally
// conditioned on z in every gate).
import * as E from '../engine';
import { Conv2d, ConvTranspose2d, Linear } from '../nn/layers';
import type { ParamSet } from '../nn/params';
import type { MnistModelConfig } from './config';

/** Spatial sizes through the encoder: s -> s/2 -> s/4 (padded to even) -> ceil(s/8). */
export function encoderSizes(imageSize: number): { half: number; quarter: number; quarterPadded: number; eighth: number } {
  const half = imageSize / 2;
  const quarter = imageSize / 4;
  const quarterPadded = quarter + (quarter % 2);
  return { half, quarter, quarterPadded, eighth: quarterPadded / 2 };
}

/**
 * Conv encoder: 8 ReLU convs (3 strided), zero-pad 7->8, flatten, linear to (mu, log sigma) interleaved.
 * 8 as in the authors' code; the paper's appendix lists 9 (docs/departures.md).
 */
export class Encoder {
  private readonly convs: Conv2d[];
  private readonly out: Linear;
  private readonly sizes: ReturnType<typeof encoderSizes>;

  constructor(params: ParamSet, private readonly c: MnistModelConfig) {
    const [d1, d2, d3, d4] = c.encoderDims;
    const wn = c.weightNorm;
    const conv = (name: string, cin: number, cout: number, stride: 1 | 2 = 1): Conv2d =>
      new Conv2d(params, `enc.${name}`, { in: cin, out: cout, kernel: 3, stride, weightNorm: wn });
    this.convs = [conv('1', 1, d1), conv('2', d1, d2, 2), conv('3', d2, d2), conv('4', d2, d3, 2), conv('5', d3, d3), conv('6', d3, d4, 2), conv('7', d4, d4), conv('8', d4, d4)];
    this.sizes = encoderSizes(c.imageSize);
    this.out = new Linear(params, 'enc.out', { in: d4 * this.sizes.eighth ** 2, out: 2 * c.latentDim, weightNorm: wn });
  }

  /** x [B,1,S,S] -> { mu, logSigma } each [B, Z]. */
  forward(x: E.Tensor): { mu: E.Tensor; logSigma: E.Tensor } {
    const pairs = this.statistics(x);
    const batch = x.shape[0];
    const mu = E.slice(pairs, [0, 0, 0], [batch, this.c.latentDim, 1]).view([batch, this.c.latentDim]);
    const logSigma = E.slice(pairs, [0, 0, 1], [batch, this.c.latentDim, 1]).view([batch, this.c.latentDim]);
    return { mu, logSigma };
  }

  /** x [B,1,S,S] -> the statistics [B, Z, 2] as the reference interleaves them: (mu, log sigma) pairs. */
  statistics(x: E.Tensor): E.Tensor {
    let h = x;
    this.convs.forEach((conv, i) => {
      h = E.relu(conv.forward(h));
      if (i === 3 && this.sizes.quarter !== this.sizes.quarterPadded) {
        // The reference pads 7x7 maps to 8x8 at the bottom and right before the last stride.
        h = E.pad(h, [[0, 0], [0, 0], [0, 1], [0, 1]]);
      }
    });
    const batch = x.shape[0];
    const stats = this.out.forward(h.view([batch, h.size / batch]));
    // Interleaved, as the reference: mu = out[:, 0::2], log sigma = out[:, 1::2].
    return stats.view([batch, this.c.latentDim, 2]);
  }

  macs(): number {
    const s = this.c.imageSize;
    const sz = [s, s, s / 2, s / 2, this.sizes.quarterPadded, this.sizes.quarterPadded, this.sizes.eighth, this.sizes.eighth];
    return this.convs.reduce((n, conv, i) => n + conv.macs(sz[i], sz[i]), 0) + this.out.macs();
  }
}

/** Upsampling decoder: linear -> ReLU convs and three x2 transposed convs -> feature maps [B, D, S, S]. */
export class UpsamplingDecoder {
  private readonly fc: Linear;
  private readonly convs: Conv2d[];
  private readonly deconvs: ConvTranspose2d[];
  private readonly sizes: ReturnType<typeof encoderSizes>;
  readonly outChannels: number;

  constructor(params: ParamSet, private readonly c: MnistModelConfig) {
    const [d0, d1, d2] = c.decoderDims;
    const wn = c.weightNorm;
    this.sizes = encoderSizes(c.imageSize);
    this.fc = new Linear(params, 'dec.fc', { in: c.latentDim, out: d0 * this.sizes.eighth ** 2, weightNorm: wn });
    const conv = (name: string, cin: number, cout: number): Conv2d => new Conv2d(params, `dec.${name}`, { in: cin, out: cout, kernel: 3, weightNorm: wn });
    // The reference's Deconv2D has no weight norm.
    const deconv = (name: string, cin: number, cout: number): ConvTranspose2d =>
      new ConvTranspose2d(params, `dec.${name}`, { in: cin, out: cout, kernel: 3, stride: 2, padding: 1, outputPadding: 1 });
    this.convs = [conv('conv1', d0, d0), conv('conv2', d0, d0), conv('conv3', d1, d1), conv('conv4', d2, d2), conv('conv5', d2, d2)];
    this.deconvs = [deconv('deconv1', d0, d1), deconv('deconv2', d1, d2), deconv('deconv3', d2, d2)];
    this.outChannels = d2;
  }

  forward(z: E.Tensor): E.Tensor {
    const batch = z.shape[0];
    const e = this.sizes.eighth;
    let h = E.relu(this.fc.forward(z)).view([batch, this.c.decoderDims[0], e, e]);
    h = E.relu(this.convs[0].forward(h));
    h = E.relu(this.convs[1].forward(h));
    h = E.relu(this.deconvs[0].forward(h));
    h = E.relu(this.convs[2].forward(h));
    if (this.sizes.quarterPadded !== this.sizes.quarter) {
      h = E.slice(h, [0, 0, 0, 0], [batch, h.shape[1], this.sizes.quarter, this.sizes.quarter]); // crop 8 -> 7
    }
    h = E.relu(this.deconvs[1].forward(h));
    h = E.relu(this.convs[3].forward(h));
    h = E.relu(this.deconvs[2].forward(h));
    h = E.relu(this.convs[4].forward(h));
    return h;
  }

  macs(): number {
    const { eighth: e, quarter: q, half: h } = this.sizes;
    const s = this.c.imageSize;
    return (
      this.fc.macs() + this.convs[0].macs(e, e) + this.convs[1].macs(e, e) + this.deconvs[0].macs(e, e) + this.convs[2].macs(2 * e, 2 * e) +
      this.deconvs[1].macs(q, q) + this.convs[3].macs(h, h) + this.deconvs[2].macs(h, h) + this.convs[4].macs(s, s)
    );
  }
}

/**
 * z's per-gate terms: interleave(tanhTerm, sigmoidTerm) [B, 2P], which a gate adds to its
 * pre-activation [B, 2P, H, W] at every position (the conv's or the gate's `cond` option, fused).
 * Two linear maps with their own parameters (`.cond_tanh.*`, `.cond_sigmoid.*`: checkpoints name them).
 */
export class GateConditioning {
  private readonly tanhMap: Linear;
  private readonly sigmoidMap: Linear;

  constructor(params: ParamSet, name: string, latentDim: number, width: number, weightNorm: boolean) {
    this.tanhMap = new Linear(params, `${name}.cond_tanh`, { in: latentDim, out: width, weightNorm });
    this.sigmoidMap = new Linear(params, `${name}.cond_sigmoid`, { in: latentDim, out: width, weightNorm });
  }

  /**
   * [B, 2P], channel 2c the tanh half's term c and 2c+1 the sigmoid half's, as the gates interleave
   * them: both maps in one fused op (E.pairedLinear), the same values as two linear layers and a concat.
   */
  term(z: E.Tensor): E.Tensor {
    return E.pairedLinear(z, this.tanhMap.weight(), this.sigmoidMap.weight(), this.tanhMap.b, this.sigmoidMap.b);
  }

  /** Its maps as one item of E.pairedLinearMany. */
  item(): E.PairedItem {
    return { a: this.tanhMap.weight(), b: this.sigmoidMap.weight(), aBias: this.tanhMap.b, bBias: this.sigmoidMap.b };
  }

  macs(): number {
    return 2 * this.tanhMap.macs();
  }
}

/** Each gate's z terms, computed together (see conditioningTerms). */
export type ConditioningTerms = ReadonlyMap<GateConditioning, E.Tensor>;

/**
 * Every gate's z terms at once (E.pairedLinearMany): for a model whose parameters are packed (a
 * training step) one dispatch each way serves them all, where one term per gate takes three.
 */
export function conditioningTerms(conds: readonly (GateConditioning | null)[], z: E.Tensor): ConditioningTerms {
  const list = conds.filter((c): c is GateConditioning => c !== null);
  const terms = E.pairedLinearMany(z, list.map((c) => c.item()));
  return new Map(list.map((c, i) => [c, terms[i]]));
}

/** A gate's z term: from `terms` when they were computed together, else alone. */
function termOf(cond: GateConditioning | null, z: E.Tensor | null, terms?: ConditioningTerms): E.Tensor | undefined {
  if (!cond || !z) return undefined;
  return terms?.get(cond) ?? cond.term(z);
}

/**
 * One gated layer with vertical and horizontal stacks (no blind spot), as next_stacks_gated in the
 * reference: the vertical stack sees rows above and the current row (through a k x k 'vstack' mask
 * on a map padded with one zero row on top); its pre-activation, shifted down one row, feeds the
 * horizontal stack through a 1x1 conv; the horizontal stack sees pixels to the left (1 x k mask A in
 * the first layer, B after).
 *
 * Fused for speed, with the same arithmetic: the zero row on top is one more row of the vertical
 * conv's padding, so its output vpre [B, 2P, H+1, W] holds both the shifted map (rows 0..H-1) and
 * the current one (rows 1..H). The vertical gate reads rows 1..H with z's terms in one kernel; v2h is
 * a 1x1 conv on vpre cropped by its last row; the horizontal conv adds v2h's output and z's terms to
 * its pre-activation and gates in its epilogue. No pad, slice or add kernels remain.
 */
export class GatedStackLayer {
  // Read by the incremental sampler (incremental.ts), which packs the effective weights.
  readonly vconv: Conv2d;
  readonly v2h: Conv2d;
  readonly hconv: Conv2d;
  readonly h2h: Conv2d;
  readonly vcond: GateConditioning | null;
  readonly hcond: GateConditioning | null;

  constructor(
    params: ParamSet,
    name: string,
    inChannels: number,
    readonly width: number,
    k: number,
    first: boolean,
    readonly residual: boolean,
    latentDim: number | null,
    weightNorm: boolean,
    /** False for the last layer: its vertical output feeds nothing, so it is neither computed nor conditioned. */
    private readonly verticalOutput = true,
  ) {
    const c = Math.floor(k / 2);
    const p2 = 2 * width;
    this.vconv = new Conv2d(params, `${name}.vstack`, { in: inChannels, out: p2, kernel: k, mask: { type: 'vstack' }, weightNorm, padding: [c + 1, c, c, c] });
    this.v2h = new Conv2d(params, `${name}.v2h`, { in: p2, out: p2, kernel: 1, weightNorm, padding: [0, -1, 0, 0] });
    this.hconv = new Conv2d(params, `${name}.hstack`, { in: inChannels, out: p2, kernel: [1, k], mask: { type: first ? 'A' : 'B' }, weightNorm, padding: [0, 0, c, c] });
    this.h2h = new Conv2d(params, `${name}.h2h`, { in: width, out: width, kernel: 1, weightNorm });
    this.vcond = latentDim && verticalOutput ? new GateConditioning(params, `${name}.vstack`, latentDim, width, weightNorm) : null;
    this.hcond = latentDim ? new GateConditioning(params, `${name}.hstack`, latentDim, width, weightNorm) : null;
  }

  forward(xv: E.Tensor, xh: E.Tensor, z: E.Tensor | null, terms?: ConditioningTerms): { v: E.Tensor | null; h: E.Tensor } {
    const height = xv.shape[2];
    // Row r of vpre is the vertical stack at image row r - 1 (row 0 sees only the zero row on top).
    const vpre = this.vconv.forward(xv); // [B, 2P, H+1, W]
    const vout = this.verticalOutput ? E.gate(vpre, { rows: [1, height], cond: termOf(this.vcond, z, terms) }) : null;
    const v2h = this.v2h.forward(vpre); // rows 0..H-1: the vertical pre-activation shifted down one row
    const hgated = this.hconv.forward(xh, { preResidual: v2h, cond: termOf(this.hcond, z, terms), gate: true });
    const hout = this.h2h.forward(hgated, this.residual ? { residual: xh } : {});
    return { v: vout, h: hout };
  }

  /** vconv computes H+1 rows and v2h H (its crop), as before the fusion. */
  macs(h: number, w: number): number {
    return this.vconv.macs(h, w) + this.v2h.macs(h + 1, w) + this.hconv.macs(h, w) + this.h2h.macs(h, w) + (this.vcond?.macs() ?? 0) + (this.hcond?.macs() ?? 0);
  }
}

/** Gated output head: 1x1 conv to 2W then gate (optionally z-conditioned), twice, then a 1x1 conv to one logit. */
export class GatedHead {
  readonly out1: Conv2d;
  readonly out2: Conv2d;
  readonly out3: Conv2d;
  readonly cond1: GateConditioning | null;
  readonly cond2: GateConditioning | null;

  constructor(params: ParamSet, inChannels: number, width: number, latentDim: number | null, weightNorm: boolean) {
    this.out1 = new Conv2d(params, 'pix.out1', { in: inChannels, out: 2 * width, kernel: 1, weightNorm });
    this.out2 = new Conv2d(params, 'pix.out2', { in: width, out: 2 * width, kernel: 1, weightNorm });
    this.out3 = new Conv2d(params, 'pix.out3', { in: width, out: 1, kernel: 1, weightNorm, he: false });
    this.cond1 = latentDim ? new GateConditioning(params, 'pix.out1', latentDim, width, weightNorm) : null;
    this.cond2 = latentDim ? new GateConditioning(params, 'pix.out2', latentDim, width, weightNorm) : null;
  }

  forward(h: E.Tensor, z: E.Tensor | null, terms?: ConditioningTerms): E.Tensor {
    const a = this.out1.forward(h, { gate: true, cond: termOf(this.cond1, z, terms) });
    const b = this.out2.forward(a, { gate: true, cond: termOf(this.cond2, z, terms) });
    return this.out3.forward(b);
  }

  macs(h: number, w: number): number {
    return this.out1.macs(h, w) + this.out2.macs(h, w) + this.out3.macs(h, w) + (this.cond1 ? this.cond1.macs() + this.cond2!.macs() : 0);
  }
}

/** The gated two-stack PixelCNN decoder (gated-pixelcnn, gated-pixelvae, gated-pixelvae-cond). */
export class GatedPixelCnn {
  readonly layers: GatedStackLayer[];
  readonly head: GatedHead;

  /** `inChannels`: 1 for the image alone, 1 + D when decoder features are concatenated. */
  constructor(params: ParamSet, private readonly c: MnistModelConfig, inChannels: number, conditionOnZ: boolean) {
    const latent = conditionOnZ ? c.latentDim : null;
    const p = c.pixelWidth;
    const wn = c.weightNorm;
    const last = c.pixelLayers;
    this.layers = [new GatedStackLayer(params, 'pix.input', inChannels, p, c.inputFilterSize, true, false, latent, wn, last > 0)];
    for (let i = 1; i <= last; i++) this.layers.push(new GatedStackLayer(params, `pix.${i}`, p, p, c.filterSize, false, true, latent, wn, i < last));
    // The cond_z_bias head keeps width P; the upsampling variants use outputWidth (32).
    this.head = new GatedHead(params, p, conditionOnZ ? p : c.outputWidth, latent, wn);
  }

  /** input [B, Cin, S, S] (image first) -> logits [B, 1, S, S]. */
  forward(input: E.Tensor, z: E.Tensor | null): E.Tensor {
    let v: E.Tensor | null = input;
    let h = input;
    const conds = [...this.layers.flatMap((l) => [l.vcond, l.hcond]), this.head.cond1, this.head.cond2];
    const terms = z && conds.some((c) => c !== null) ? conditioningTerms(conds, z) : undefined;
    for (const layer of this.layers) ({ v, h } = layer.forward(v!, h, z, terms));
    return this.head.forward(h, z, terms);
  }

  macs(): number {
    const s = this.c.imageSize;
    return this.layers.reduce((n, l) => n + l.macs(s, s), 0) + this.head.macs(s, s);
  }
}

/**
 * The blind-spot PixelCNN (pixelcnn, pixelvae): a 7x7 mask-A conv, residual 5x5 mask-B ReLU layers, 1x1 head.
 * Our design: the authors' MNIST code has only the two gated decoders (docs/departures.md).
 */
export class MaskedPixelCnn {
  readonly input: Conv2d;
  readonly layers: Conv2d[] = [];
  readonly out1: Conv2d;
  readonly out2: Conv2d;
  readonly out3: Conv2d;

  constructor(params: ParamSet, private readonly c: MnistModelConfig, inChannels: number) {
    const p = c.pixelWidth;
    const wn = c.weightNorm;
    this.input = new Conv2d(params, 'pix.input', { in: inChannels, out: p, kernel: c.inputFilterSize, mask: { type: 'A' }, weightNorm: wn });
    for (let i = 1; i <= c.pixelLayers; i++) this.layers.push(new Conv2d(params, `pix.${i}`, { in: p, out: p, kernel: c.filterSize, mask: { type: 'B' }, weightNorm: wn }));
    this.out1 = new Conv2d(params, 'pix.out1', { in: p, out: c.outputWidth, kernel: 1, weightNorm: wn });
    this.out2 = new Conv2d(params, 'pix.out2', { in: c.outputWidth, out: c.outputWidth, kernel: 1, weightNorm: wn });
    this.out3 = new Conv2d(params, 'pix.out3', { in: c.outputWidth, out: 1, kernel: 1, weightNorm: wn, he: false });
  }

  forward(input: E.Tensor): E.Tensor {
    let h = E.relu(this.input.forward(input));
    // Residual: h + relu(conv(h)); the mask-B layers keep the blind-spot causal structure.
    for (const layer of this.layers) h = E.add(h, E.relu(layer.forward(h)));
    h = E.relu(this.out1.forward(h));
    h = E.relu(this.out2.forward(h));
    return this.out3.forward(h);
  }

  macs(): number {
    const s = this.c.imageSize;
    return this.input.macs(s, s) + this.layers.reduce((n, l) => n + l.macs(s, s), 0) + this.out1.macs(s, s) + this.out2.macs(s, s) + this.out3.macs(s, s);
  }
}
