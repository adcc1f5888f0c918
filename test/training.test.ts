// End-to-end engine checks: a small masked, gated conv network trained by the engine follows the same
// network trained by the float64 CPU reference step for step, and a training loop's GPU memory is
// flat once warmed up.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { refConv2d, refConv2dBackward, type RefConv2dOptions } from '../src/engine/reference/conv';
import { nd, sigmoid, softplus, type NDArray } from '../src/engine/reference/ndarray';
import { AdamReference } from '../src/engine/reference/optim';
import { randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

// The network: x [N,1,H,W] binary -> conv 3x3 mask A, 1->2C, bias, gated -> [N,C,H,W]
//   -> conv 3x3 mask B, C->1, bias, + residual of nothing -> logits; loss = mean_n sum_pixels BCE(logits, x).
const N = 3;
const H = 7;
const W = 6;
const C = 3;
const LR = 0.05;
const CLIP = 1;
const CONV1: RefConv2dOptions = { padding: 1, mask: { type: 'A' }, gate: true };
const CONV2: RefConv2dOptions = { padding: 1, mask: { type: 'B' } };

interface Weights {
  w1: NDArray;
  b1: NDArray;
  w2: NDArray;
  b2: NDArray;
}

function initialWeights(): Weights {
  const scaled = (a: NDArray, s: number): NDArray => toF32({ shape: a.shape, data: a.data.map((v) => v * s) });
  return {
    w1: scaled(randomArray([2 * C, 1, 3, 3], 11), 0.6),
    b1: scaled(randomArray([2 * C], 12), 0.1),
    w2: scaled(randomArray([1, C, 3, 3], 13), 0.6),
    b2: scaled(randomArray([1], 14), 0.1),
  };
}

/** Learnable binary images: each row is one random bit repeated (so a pixel follows its left neighbour). */
function batches(): NDArray[] {
  return [0, 1, 2].map((i) => {
    const rows = randomArray([N, 1, H, 1], 100 + i, 'binary');
    return randomArray([N, 1, H, W], 0, (_r, k) => rows.data[Math.floor(k / W)]);
  });
}

/** Float64 forward + backward: loss and gradients. */
function referenceStep(p: Weights, x: NDArray): { loss: number; grads: Weights } {
  const h = refConv2d(x, p.w1, { ...CONV1, bias: p.b1 });
  const logits = refConv2d(h, p.w2, { ...CONV2, bias: p.b2 });
  let loss = 0;
  const dLogits = nd(logits.shape);
  for (let i = 0; i < logits.data.length; i++) {
    const l = logits.data[i];
    loss += softplus(l) - x.data[i] * l;
    dLogits.data[i] = (sigmoid(l) - x.data[i]) / N;
  }
  const g2 = refConv2dBackward(h, p.w2, dLogits, { ...CONV2, bias: p.b2 });
  const g1 = refConv2dBackward(x, p.w1, g2.dx, { ...CONV1, bias: p.b1 });
  return { loss: loss / N, grads: { w1: g1.dw, b1: g1.dbias, w2: g2.dw, b2: g2.dbias } };
}

/** Adam in the TF/Lasagne form the engine uses, with element-wise clipping, in float64. */
/** The float64 Adam (src/engine/reference/optim.ts) over the four weight arrays, in a fixed order. */
function referenceAdam(p: Weights): (g: Weights) => void {
  const keys = ['w1', 'b1', 'w2', 'b2'] as const;
  const adam = new AdamReference({ lr: LR, beta1: 0.9, beta2: 0.999, eps: 1e-8, clipValue: CLIP, clipGlobalNorm: 0 }, keys.map((k) => p[k].data.length));
  return (g) => void adam.step(keys.map((k) => p[k].data), keys.map((k) => g[k].data));
}

function engineNetwork(initial: Weights) {
  const params = {
    w1: E.keep(E.param(E.fromArray(initial.w1.data, initial.w1.shape))),
    b1: E.keep(E.param(E.fromArray(initial.b1.data, initial.b1.shape))),
    w2: E.keep(E.param(E.fromArray(initial.w2.data, initial.w2.shape))),
    b2: E.keep(E.param(E.fromArray(initial.b2.data, initial.b2.shape))),
  };
  const list = [params.w1, params.b1, params.w2, params.b2];
  const optimizer = new E.Adam({ lr: LR, clipValue: CLIP });
  const inputs = batches().map((b) => E.keep(E.fromArray(b.data, b.shape)));
  let lossSum = E.keep(E.zeros([1]));
  /** One step on batch `i`; the loss is accumulated on the GPU (no readback). */
  const step = (i: number): E.Tensor =>
    E.tidy(() => {
      const x = inputs[i % inputs.length];
      const h = E.conv2d(x, params.w1, { padding: 1, mask: { type: 'A' }, bias: params.b1, gate: true });
      const logits = E.conv2d(h, params.w2, { padding: 1, mask: { type: 'B' }, bias: params.b2 });
      const loss = E.mean(E.sum(E.bceWithLogits(logits, x).view([N, H * W]), 1));
      const grads = E.grad(loss, list);
      optimizer.step(list, grads);
      const next = E.keep(E.add(lossSum, loss.view([1])));
      lossSum.dispose();
      lossSum = next;
      return loss;
    });
  return { params, list, step, optimizer, inputs, readLossSum: () => lossSum };
}

describe('training', () => {
  it('50 steps of a masked, gated conv net follow the float64 reference step for step', async () => {
    const initial = initialWeights();
    const reference: Weights = {
      w1: nd(initial.w1.shape, initial.w1.data),
      b1: nd(initial.b1.shape, initial.b1.data),
      w2: nd(initial.w2.shape, initial.w2.data),
      b2: nd(initial.b2.shape, initial.b2.data),
    };
    const data = batches();
    const referenceStepAdam = referenceAdam(reference);
    const referenceLosses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const { loss, grads } = referenceStep(reference, data[i % data.length]);
      referenceLosses.push(loss);
      referenceStepAdam(grads);
    }

    const net = engineNetwork(initial);
    const losses: E.Tensor[] = [];
    for (let i = 0; i < 50; i++) losses.push(E.keep(net.step(i)));
    const engineLosses: number[] = [];
    for (const l of losses) engineLosses.push(await l.item());

    // The loss falls, and the curves agree at every step.
    expect(referenceLosses[49]).toBeLessThan(0.8 * referenceLosses[0]);
    for (let i = 0; i < 50; i++) {
      expect(Math.abs(engineLosses[i] - referenceLosses[i]) / referenceLosses[i], `step ${i}: engine ${engineLosses[i]} vs reference ${referenceLosses[i]}`).toBeLessThan(1e-3);
    }
    // And the weights end where the reference's do.
    for (const key of ['w1', 'b1', 'w2', 'b2'] as const) {
      const got = await net.params[key].data();
      const want = reference[key].data;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i]), `${key}[${i}]`).toBeLessThan(2e-3 * (1 + Math.abs(want[i])));
    }
  });

  it('live GPU buffers and bytes stay flat over 200 training steps after warm-up', async () => {
    const gpu = await useGpu();
    const net = engineNetwork(initialWeights());
    // As the trainers do: one throttle (submit, wait for the step before) per step.
    for (let i = 0; i < 5; i++) {
      net.step(i).dispose();
      await gpu.throttle();
    }
    await gpu.sync();
    const before = gpu.stats();
    for (let i = 5; i < 205; i++) {
      net.step(i).dispose();
      await gpu.throttle();
    }
    await gpu.sync();
    const after = gpu.stats();
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.createdBuffers).toBe(before.createdBuffers); // nothing allocated after warm-up
    expect(after.pipelines).toBe(before.pipelines); // nothing compiled after warm-up
    const mean = (await net.readLossSum().item()) / 205;
    expect(Number.isFinite(mean)).toBe(true);
  });
});
