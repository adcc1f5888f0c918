// The fused gated PixelCNN layers (src/models/networks.ts) against the unfused composition they
// replaced (pad, conv, slice, broadcast add of z's terms, gate): same outputs and same gradients for
// every parameter and input, so checkpoints trained before the fusion mean the same thing after it.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { GatedHead, GatedStackLayer, type GateConditioning } from '../src/models/networks';
import { ParamSet } from '../src/nn/params';
import { expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

function random(shape: number[], seed: number): E.Tensor {
  return E.fromArray(Float32Array.from(toF32(randomArray(shape, seed)).data), shape);
}

/** Random biases and gains, so that every term matters. */
function perturb(params: ParamSet, seed: number): void {
  const values = new Map<string, Float32Array>();
  params.entriesList().forEach(([name, t], i) => {
    const r = Float32Array.from(toF32(randomArray(t.shape, seed + i)).data);
    if (name.endsWith('.bias')) values.set(name, r.map((v) => 0.3 * v));
    else if (name.endsWith('.gain')) values.set(name, r.map((v) => 0.7 + 0.2 * Math.abs(v)));
    else values.set(name, r.map((v) => 0.4 * v));
  });
  params.assign(values);
}

/** x + z's terms, as GateConditioning.apply did: a broadcast add over [B, 2P, H, W]. */
function addTerms(x: E.Tensor, cond: GateConditioning | null, z: E.Tensor): E.Tensor {
  if (!cond) return x;
  const [b, c] = x.shape;
  return E.add(x, cond.term(z).view([b, c, 1, 1]));
}

/** The layer's forward before the fusion, from primitive ops. */
function unfusedLayer(layer: GatedStackLayer, xv: E.Tensor, xh: E.Tensor, z: E.Tensor): { v: E.Tensor | null; h: E.Tensor } {
  const [batch, , height, width] = xv.shape;
  const p2 = 2 * layer.width;
  const k = layer.vconv.kh;
  const c = Math.floor(k / 2);
  const vpad = E.pad(xv, [[0, 0], [0, 0], [1, 0], [0, 0]]);
  const vpre = E.conv2d(vpad, layer.vconv.weight(), { padding: [c, c, c, c], bias: layer.vconv.b!, mask: { type: 'vstack' } });
  const vcur = E.slice(vpre, [0, 0, 1, 0], [batch, p2, height, width]);
  const v = layer.vcond ? E.gate(addTerms(vcur, layer.vcond, z)) : null;
  const vshift = E.slice(vpre, [0, 0, 0, 0], [batch, p2, height, width]);
  const v2h = E.conv2d(vshift, layer.v2h.weight(), { bias: layer.v2h.b! });
  const hpre = E.conv2d(xh, layer.hconv.weight(), { padding: [0, 0, c, c], bias: layer.hconv.b!, mask: layer.hconv.opts.mask, residual: v2h });
  const hg = E.gate(addTerms(hpre, layer.hcond, z));
  const h = E.conv2d(hg, layer.h2h.weight(), { bias: layer.h2h.b!, residual: layer.residual ? xh : undefined });
  return { v, h };
}

function unfusedHead(head: GatedHead, h: E.Tensor, z: E.Tensor): E.Tensor {
  const a = E.gate(addTerms(E.conv2d(h, head.out1.weight(), { bias: head.out1.b! }), head.cond1, z));
  const b = E.gate(addTerms(E.conv2d(a, head.out2.weight(), { bias: head.out2.b! }), head.cond2, z));
  return E.conv2d(b, head.out3.weight(), { bias: head.out3.b! });
}

/** Outputs and gradients (inputs, then every parameter) of sum(out_i * r_i). */
async function run(params: ParamSet, inputs: E.Tensor[], forward: () => E.Tensor[]): Promise<Float32Array[]> {
  return E.tidyAsync(async () => {
    const outs = forward();
    let loss: E.Tensor | null = null;
    outs.forEach((o, i) => {
      const term = E.sum(E.mul(o, random([...o.shape], 90 + i)));
      loss = loss ? E.add(loss, term) : term;
    });
    const grads = E.grad(loss!, [...inputs, ...params.tensors()]);
    const values = await Promise.all([...outs, ...grads].map((t) => (t ? t.data() : Promise.resolve(new Float32Array(0)))));
    return values.map((v) => Float32Array.from(v as Float32Array));
  });
}

describe('fused gated layers equal the unfused ops', () => {
  const cases: [string, { inChannels: number; width: number; k: number; first: boolean; residual: boolean; vertical: boolean }][] = [
    ['input layer (mask A, 1 channel in), k 5', { inChannels: 1, width: 3, k: 5, first: true, residual: false, vertical: true }],
    ['residual layer (mask B), k 3, odd width', { inChannels: 5, width: 5, k: 3, first: false, residual: true, vertical: true }],
    ['last layer (no vertical output), k 5', { inChannels: 4, width: 4, k: 5, first: false, residual: true, vertical: false }],
  ];
  for (const [name, o] of cases) {
    it(name, async () => {
      const params = new ParamSet(3);
      const layer = new GatedStackLayer(params, 'l', o.inChannels, o.width, o.k, o.first, o.residual, 3, true, o.vertical);
      perturb(params, 10);
      const [batch, h, w] = [3, 7, 6];
      const xv = E.keep(E.param(random([batch, o.inChannels, h, w], 1)));
      const xh = E.keep(E.param(random([batch, o.inChannels, h, w], 2)));
      const z = E.keep(E.param(random([batch, 3], 3)));
      const outputs = (r: { v: E.Tensor | null; h: E.Tensor }): E.Tensor[] => (r.v ? [r.v, r.h] : [r.h]);
      const fused = await run(params, [xv, xh, z], () => outputs(layer.forward(xv, xh, z)));
      const reference = await run(params, [xv, xh, z], () => outputs(unfusedLayer(layer, xv, xh, z)));
      expect(fused.length).toBe(reference.length);
      fused.forEach((a, i) => expectClose(a, reference[i], 1e-5, `${name}: output/gradient ${i}`));
      for (const t of [xv, xh, z]) t.dispose();
      params.dispose();
    });
  }
  it('head (two z-conditioned gates)', async () => {
    const params = new ParamSet(4);
    const head = new GatedHead(params, 5, 3, 2, true);
    perturb(params, 20);
    const x = E.keep(E.param(random([2, 5, 5, 7], 4)));
    const z = E.keep(E.param(random([2, 2], 5)));
    const fused = await run(params, [x, z], () => [head.forward(x, z)]);
    const reference = await run(params, [x, z], () => [unfusedHead(head, x, z)]);
    fused.forEach((a, i) => expectClose(a, reference[i], 1e-5, `head: output/gradient ${i}`));
    x.dispose();
    z.dispose();
    params.dispose();
  });
});
