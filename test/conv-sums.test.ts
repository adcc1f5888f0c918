// conv_grad_sums: the per-channel sums (bias and cond gradients) against float64 sums, on odd sizes:
// batches around the lane split (1, 3, 31, 33, 64, 65, 130), planes with and without a vec4 tail,
// rank 2 (a gate's cond), and more channels than one workgroup row holds; then inside conv2d and
// convTranspose2d, where they share the split-K weight gradient's second dispatch.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { channelSumLanes, channelSums, weightGradSplits } from '../src/engine/ops/conv';
import { refConv2d, refConvTranspose2d } from '../src/engine/reference/conv';
import { checkOp, expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

function refSums(x: Float64Array, n: number, c: number, plane: number): { perImage: Float64Array; total: Float64Array } {
  const perImage = new Float64Array(n * c);
  const total = new Float64Array(c);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < c; j++) {
      let s = 0;
      for (let k = 0; k < plane; k++) s += x[(i * c + j) * plane + k];
      perImage[i * c + j] = s;
      total[j] += s;
    }
  return { perImage, total };
}

async function check(shape: number[], want: { perImage: boolean; total: boolean }, seed: number): Promise<void> {
  const [n, c] = shape;
  const plane = shape.slice(2).reduce((a, b) => a * b, 1);
  const x = toF32(randomArray(shape, seed));
  const ref = refSums(x.data, n, c, plane);
  const got = await E.tidyAsync(async () => {
    const r = channelSums(E.fromArray(x.data, shape), want);
    return {
      perImage: r.perImage ? ((await r.perImage.data()) as Float32Array) : null,
      total: r.total ? ((await r.total.data()) as Float32Array) : null,
    };
  });
  const name = `[${shape.join(',')}]`;
  if (want.perImage) expectClose(got.perImage!, ref.perImage, 1e-5, `${name} per image`);
  else expect(got.perImage).toBeNull();
  if (want.total) expectClose(got.total!, ref.total, 1e-5, `${name} total`);
  else expect(got.total).toBeNull();
}

describe('conv_grad_sums: per-channel sums alone', () => {
  it('lanes per plane follow the batch', () => {
    expect([1, 2, 3, 31, 32, 33, 64, 65, 500].map(channelSumLanes)).toEqual([64, 32, 16, 2, 2, 1, 1, 1, 1]);
  });
  const shapes: number[][] = [
    [1, 5, 7, 9],
    [3, 7, 5, 3],
    [31, 6, 5, 5],
    [33, 3, 7, 7],
    [64, 2, 3, 1],
    [65, 5, 2, 3],
    [130, 3, 1, 5],
    [2, 9, 1, 1],
    [5, 4, 29, 31],
  ];
  shapes.forEach((shape, i) => {
    it(`[${shape.join(',')}]: both, total only, per image only`, async () => {
      await check(shape, { perImage: true, total: true }, 10 + i);
      await check(shape, { perImage: false, total: true }, 30 + i);
      await check(shape, { perImage: true, total: false }, 50 + i);
    });
  });
  it('rank 2 (a gate cond) and rank 3', async () => {
    await check([7, 10], { perImage: true, total: true }, 70);
    await check([3, 4, 9], { perImage: true, total: true }, 71);
  });
  it('more channels than one grid row (workgroups folded into y)', async () => {
    await check([1, 65537, 1], { perImage: false, total: true }, 72);
  });
});

describe('bias and cond gradients in the weight gradient\'s last dispatch', () => {
  // 16 images of 8x8: 128 rows of 8, so split-K takes 4 chunks and a second pass.
  const x = { shape: [16, 3, 8, 8] };
  const w = { shape: [6, 3, 3, 3] };
  it('uses split-K here', () => expect(weightGradSplits(16 * 8, 8, 2 * 2 * 3).splits).toBeGreaterThan(1));
  it('one conv_grad_sums dispatch gives dW, d bias and d cond (gate, cond, bias)', async () => {
    const gpu = E.engine().gpu;
    const entries: string[] = [];
    gpu.onDispatch = (spec) => void entries.push(spec.entry);
    try {
      await checkOp({
        name: 'fused sums',
        inputs: [x, w, { shape: [6] }, { shape: [16, 6] }],
        gpu: (a, b, bias, cond) => E.conv2d(a, b, { padding: 1, gate: true, bias, cond }),
        ref: (a, b, bias, cond) => refConv2d(a, b, { padding: 1, gate: true, bias, cond }),
        seed: 91,
      });
    } finally {
      gpu.onDispatch = null;
    }
    expect(entries.filter((e) => e === 'conv_grad_sums').length).toBe(1);
  });
  it('bias only; and bias with a frozen weight (sums alone)', async () => {
    await checkOp({
      name: 'fused bias',
      inputs: [x, w, { shape: [6] }],
      gpu: (a, b, bias) => E.conv2d(a, b, { padding: 1, bias }),
      ref: (a, b, bias) => refConv2d(a, b, { padding: 1, bias }),
      seed: 92,
    });
    await checkOp({
      name: 'frozen weight',
      inputs: [x, { ...w, grad: false }, { shape: [6] }, { shape: [16, 6] }],
      gpu: (a, b, bias, cond) => E.conv2d(a, b, { padding: 1, bias, cond }),
      ref: (a, b, bias, cond) => refConv2d(a, b, { padding: 1, bias, cond }),
      seed: 93,
    });
  });
  it('convTranspose2d bias at batch 16', () =>
    checkOp({
      name: 'deconv fused bias',
      inputs: [{ shape: [16, 3, 4, 5] }, { shape: [3, 5, 3, 3] }, { shape: [5] }],
      gpu: (a, b, bias) => E.convTranspose2d(a, b, { stride: 2, padding: 1, outputPadding: 1, bias }),
      ref: (a, b, bias) => refConvTranspose2d(a, b, { stride: 2, padding: 1, outputPadding: 1, bias }),
      seed: 94,
    }));
});
