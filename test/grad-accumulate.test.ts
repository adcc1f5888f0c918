// Gradient accumulation inside the ops (TapeNode.accumulates): when a tensor feeds several ops, the
// conv input gradient, the gate's gradient and pairedLinear's input gradient add what the tensor
// gathered so far in their own kernels instead of a separate add. Checked against float64 references
// and finite differences (test/support/check.ts), and by counting that no add of the tensor's size
// runs.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { refConv2d, refGateWith } from '../src/engine/reference/conv';
import type { NDArray } from '../src/engine/reference/ndarray';
import { checkOp, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

/** The references' outputs end to end, as the GPU side's concat of flattened outputs. */
function flat(parts: readonly NDArray[]): NDArray {
  const data = new Float64Array(parts.reduce((n, p) => n + p.data.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return { shape: [data.length], data };
}

const plus = (...xs: NDArray[]): NDArray => ({ shape: xs[0].shape, data: xs[0].data.map((_, i) => xs.reduce((s, x) => s + x.data[i], 0)) });

/** Adds of n elements dispatched while `work` runs (the tape's accumulation would be these). */
async function addsOfSize(n: number, work: () => void): Promise<number> {
  const gpu = E.engine().gpu;
  let adds = 0;
  gpu.onDispatch = (spec, _buffers, params) => {
    if (spec.name === 'elementwise.wgsl' && spec.constants?.OP === 0 && params[0] === n) adds += 1;
  };
  try {
    await E.tidyAsync(async () => work());
  } finally {
    gpu.onDispatch = null;
  }
  return adds;
}

describe('gradients accumulated in the ops', () => {
  it('x into three convs (plain, stride 2, masked with a fused gate): against float64 and finite differences', () =>
    checkOp({
      name: 'x shared by three convs',
      inputs: [{ shape: [2, 3, 7, 6] }, { shape: [4, 3, 3, 3] }, { shape: [5, 3, 3, 3] }, { shape: [4, 3, 5, 5] }],
      gpu: (x, w1, w2, w3) => {
        const a = E.conv2d(x, w1, { padding: 1 });
        const b = E.conv2d(x, w2, { padding: 1, stride: 2 });
        const c = E.conv2d(x, w3, { padding: 2, mask: { type: 'B' }, gate: true });
        return E.concat([a.view([a.size]), b.view([b.size]), c.view([c.size])], 0);
      },
      ref: (x, w1, w2, w3) => {
        return flat([refConv2d(x, w1, { padding: 1 }), refConv2d(x, w2, { padding: 1, stride: 2 }), refConv2d(x, w3, { padding: 2, mask: { type: 'B' }, gate: true })]);
      },
      fdSamples: 40,
    }));

  it('the same with the tiled (GPU-shaped) input-gradient kernel adding the prior', async () => {
    E.setConvVariants({ backwardInput: 'tiled' });
    try {
      await checkOp({
        name: 'x shared by two convs, tiled input gradient',
        inputs: [{ shape: [2, 3, 9, 7] }, { shape: [4, 3, 3, 3] }, { shape: [5, 3, 3, 3] }],
        gpu: (x, w1, w2) => E.add(E.sum(E.conv2d(x, w1, { padding: 1 })), E.sum(E.conv2d(x, w2, { padding: 1, stride: 2, mask: { type: 'A' } }))).view([1]),
        ref: (x, w1, w2) => {
          const a = refConv2d(x, w1, { padding: 1 });
          const b = refConv2d(x, w2, { padding: 1, stride: 2, mask: { type: 'A' } });
          return { shape: [1], data: Float64Array.of(a.data.reduce((s, v) => s + v, 0) + b.data.reduce((s, v) => s + v, 0)) };
        },
        fdSamples: 30,
      });
    } finally {
      E.setConvVariants({ backwardInput: 'cpu' });
    }
  });

  it('x into two gates (one over a band of rows) and a conv: against float64 and finite differences', () =>
    checkOp({
      name: 'x shared by gates and a conv',
      inputs: [{ shape: [2, 4, 5, 3] }, { shape: [3, 4, 3, 3] }],
      gpu: (x, w) => {
        const g1 = E.gate(x);
        const g2 = E.gate(x, { rows: [1, 3] });
        const c = E.conv2d(x, w, { padding: 1 });
        return E.concat([g1.view([g1.size]), g2.view([g2.size]), c.view([c.size])], 0);
      },
      ref: (x, w) => {
        return flat([refGateWith(x, {}), refGateWith(x, { rows: [1, 3] }), refConv2d(x, w, { padding: 1 })]);
      },
      fdSamples: 40,
    }));

  it('the tape runs no add of x\'s size for x shared by convs and gates, and still one where the op cannot add (a gate whose cond wants a gradient)', async () => {
    const x = toF32(randomArray([2, 4, 5, 3], 5));
    const w = toF32(randomArray([4, 4, 3, 3], 6));
    const cond = toF32(randomArray([2, 4], 7));
    const adds = await addsOfSize(x.data.length, () => {
      const xt = E.param(E.fromArray(x.data, x.shape));
      const wt = E.fromArray(w.data, w.shape);
      const y = E.add(E.add(E.sum(E.conv2d(xt, wt, { padding: 1 })), E.sum(E.conv2d(xt, wt, { padding: 1, mask: { type: 'A' } }))), E.sum(E.gate(xt)));
      E.grad(y, [xt]);
    });
    expect(adds).toBe(0);
    const withCond = await addsOfSize(x.data.length, () => {
      const xt = E.param(E.fromArray(x.data, x.shape));
      const ct = E.param(E.fromArray(cond.data, cond.shape));
      E.grad(E.add(E.sum(E.gate(xt, { cond: ct })), E.sum(E.gate(xt, { cond: ct }))), [xt, ct]);
    });
    expect(withCond).toBe(1);
  });

  it('a tensor passed twice to one op gets its prior once', () =>
    checkOp({
      name: 'x twice',
      inputs: [{ shape: [2, 4, 5, 3] }, { shape: [4, 4, 1, 1] }],
      // conv2d(x, w, residual: x): x in slots 0 and 3, after a gate has given x a gradient already.
      gpu: (x, w) => E.add(E.conv2d(x, w, { residual: x }), E.gate(E.concat([x, x], 1))),
      ref: (x, w) => {
        const both: NDArray = { shape: [2, 8, 5, 3], data: new Float64Array(2 * 8 * 15) };
        for (let n = 0; n < 2; n++) {
          both.data.set(x.data.subarray(n * 60, n * 60 + 60), n * 120);
          both.data.set(x.data.subarray(n * 60, n * 60 + 60), n * 120 + 60);
        }
        return plus(refConv2d(x, w), x, refGateWith(both, {}));
      },
    }));
});
