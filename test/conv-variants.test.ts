// Every conv kernel variant forced on (the GPU-shaped 'tiled' ones here; the CPU-shaped ones are
// test/conv.test.ts's): forward against the float64 reference, gradients against finite
// differences, and the whole input gradient against refConv2dBackward on shapes spanning several
// tiles and channel chunks. Then the chooser, with an injected timer and store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { conv2dWeightGradForTest, convVariants, setConvVariants, tiledWeightGradSplits } from '../src/engine/ops/conv';
import { adapterKey, chooseConvVariants, convVariantReport, memoryStore, type ConvTimer } from '../src/engine/ops/conv-variants';
import { refConv2d, refConv2dBackward, refConvTranspose2d, type RefConv2dOptions } from '../src/engine/reference/conv';
import { checkOp, expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';
import { convCase } from './support/conv-case';

beforeAll(async () => {
  await useGpu();
  setConvVariants({ forward: 'tiled', backwardInput: 'tiled', backwardWeight: 'tiled' });
});
afterAll(() => setConvVariants({ forward: 'cpu', backwardInput: 'cpu', backwardWeight: 'cpu' }));

describe('tiled conv variants: forward and gradients vs float64 and finite differences', () => {
  it('is selected, and runs', async () => {
    expect(convVariants()).toEqual({ forward: 'tiled', backwardInput: 'tiled', backwardWeight: 'tiled' });
    const gpu = E.engine().gpu;
    const entries: string[] = [];
    gpu.onDispatch = (spec) => void entries.push(spec.entry);
    try {
      await E.tidyAsync(async () => {
        const x = E.param(E.zeros([1, 2, 5, 5]));
        const w = E.param(E.zeros([3, 2, 3, 3]));
        const y = E.conv2d(x, w, { padding: 1 });
        const [gx, gw] = E.grad(y, [x, w], E.zeros(y.shape));
        await gx!.data();
        await gw!.data();
      });
    } finally {
      gpu.onDispatch = null;
    }
    expect(entries).toContain('conv_forward_tiled');
    expect(entries).toContain('conv_backward_input_tiled');
    expect(entries).toContain('conv_backward_weight_tiled');
    expect(entries).not.toContain('conv_forward');
    expect(entries).not.toContain('conv_backward_input');
    expect(entries).not.toContain('conv_backward_weight');
  });
  it('1x1', () => convCase('1x1', { cin: 3, cout: 5, h: 7, w: 6, kh: 1, kw: 1 }, {}));
  it('3x3, padding 1, bias', () => convCase('3x3', { cin: 3, cout: 5, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1, bias: true }));
  it('5x5, padding 2, Cin 9 (chunks with a remainder)', () => convCase('5x5', { cin: 9, cout: 5, h: 9, w: 7, kh: 5, kw: 5 }, { padding: 2 }, 2));
  it('7x7, padding 3', () => convCase('7x7', { cin: 2, cout: 5, h: 8, w: 9, kh: 7, kw: 7 }, { padding: 3 }, 3));
  it('2x3 (even height), asymmetric padding', () => convCase('2x3', { cin: 3, cout: 5, h: 8, w: 7, kh: 2, kw: 3 }, { padding: [1, 0, 2, 1] }));
  it('stride 2, 3x3, padding 1', () => convCase('s2 3x3', { cin: 3, cout: 5, h: 9, w: 8, kh: 3, kw: 3 }, { stride: 2, padding: 1 }));
  it('stride 2, 5x5, asymmetric padding', () => convCase('s2 5x5', { cin: 3, cout: 5, h: 11, w: 9, kh: 5, kw: 5 }, { stride: 2, padding: [2, 1, 1, 2] }, 4));
  it('stride 2, 1x1, padding', () => convCase('1x1 s2', { cin: 7, cout: 6, h: 9, w: 8, kh: 1, kw: 1 }, { stride: 2, padding: [1, 0, 0, 1] }, 7));
  it('negative padding (crop), stride 2', () => convCase('s2 crop', { cin: 3, cout: 5, h: 11, w: 10, kh: 3, kw: 3 }, { stride: 2, padding: [-1, -1, -1, -2] }, 23));
  it('Cout 1 and Cout 2 (channel blocks of 1 and 2)', async () => {
    await convCase('Cout 1', { cin: 3, cout: 1, h: 7, w: 9, kh: 3, kw: 3 }, { padding: 1, bias: true });
    await convCase('1->2', { cin: 1, cout: 2, h: 9, w: 7, kh: 5, kw: 5 }, { padding: 2 });
  });
  it('gate + bias + residual, stride 2, Cout 10 (partial channel group)', () =>
    convCase('gate+bias+res', { cin: 3, cout: 10, h: 9, w: 7, kh: 3, kw: 3 }, { stride: 2, padding: 1, gate: true, bias: true, residual: true }));
  it('cond + gate + bias, 3 images', () =>
    convCase('cond+gate', { n: 3, cin: 3, cout: 10, h: 9, w: 7, kh: 3, kw: 3 }, { padding: 1, gate: true, bias: true, cond: true }, 12));
  it('hstack: 1x5 mask B, pre-residual + cond + gate + bias', () =>
    convCase('hstack fused', { n: 3, cin: 3, cout: 6, h: 5, w: 9, kh: 1, kw: 5 }, { padding: [0, 0, 2, 2], mask: { type: 'B' }, gate: true, bias: true, preResidual: true, cond: true }, 16));
  it('hstack: 1x3 mask A, pre-residual + cond + gate', () =>
    convCase('hstack A', { cin: 1, cout: 10, h: 5, w: 7, kh: 1, kw: 3 }, { padding: [0, 0, 1, 1], mask: { type: 'A' }, gate: true, preResidual: true, cond: true }, 17));
  it('mask A 5x5, mask B 3x3', async () => {
    await convCase('mask A', { cin: 3, cout: 5, h: 9, w: 7, kh: 5, kw: 5 }, { padding: 2, mask: { type: 'A' } });
    await convCase('mask B', { cin: 3, cout: 5, h: 7, w: 8, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'B' } });
  });
  it('vstack 5x5 with one extra zero row on top, gate, bias', () =>
    convCase('vstack tall', { cin: 3, cout: 6, h: 7, w: 6, kh: 5, kw: 5 }, { padding: [3, 2, 2, 2], mask: { type: 'vstack' }, gate: true, bias: true }, 24));
  it('colour groups: B 5x5 groups 3, A 3x3 groups 3 on 7 -> 8, 1x1 A groups 3', async () => {
    await convCase('B groups 3', { cin: 6, cout: 9, h: 7, w: 6, kh: 5, kw: 5 }, { padding: 2, mask: { type: 'B', groups: 3 }, bias: true }, 2);
    await convCase('A groups 3', { cin: 7, cout: 8, h: 5, w: 5, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'A', groups: 3 } }, 7);
    await convCase('1x1 A groups', { cin: 3, cout: 6, h: 5, w: 7, kh: 1, kw: 1 }, { mask: { type: 'A', groups: 3 } }, 5);
  });
  it('mask A 7x7 (the PixelCNN input layer)', () => convCase('mask A 7x7', { cin: 1, cout: 4, h: 8, w: 9, kh: 7, kw: 7 }, { padding: 3, mask: { type: 'A' } }));
  it('convTranspose2d k3 s2 p1 op1 with bias, and k4 s2 p1', async () => {
    for (const [name, xs, ws, opts, bias] of [
      ['deconv s2', [2, 3, 4, 5], [3, 5, 3, 3], { stride: 2 as const, padding: 1, outputPadding: 1 }, true],
      ['deconv k4', [2, 3, 4, 3], [3, 5, 4, 4], { stride: 2 as const, padding: 1 }, false],
    ] as const) {
      await checkOp({
        name,
        inputs: bias ? [{ shape: [...xs] }, { shape: [...ws] }, { shape: [ws[1]] }] : [{ shape: [...xs] }, { shape: [...ws] }],
        gpu: (x, w, b) => E.convTranspose2d(x, w, { ...opts, bias: b }),
        ref: (x, w, b) => refConvTranspose2d(x, w, { ...opts, bias: b }),
      });
    }
  });
});

describe('tiled conv variants: the whole input gradient over several tiles and chunks', () => {
  const cases: [string, number[], number[], RefConv2dOptions][] = [
    ['5x5 B, 20 x 35 (3 x 3 tiles), Cin 18, Cout 13', [2, 18, 20, 35], [13, 18, 5, 5], { padding: 2, mask: { type: 'B' } }],
    ['3x3 stride 2, 23 x 37, asymmetric padding', [3, 5, 23, 37], [11, 5, 3, 3], { stride: 2, padding: [1, 0, 0, 1] }],
    ['vstack 5x5, 17 x 17', [2, 7, 17, 17], [6, 7, 5, 5], { padding: [3, 2, 2, 2], mask: { type: 'vstack' } }],
    ['1x1, 9 x 33, Cin 21', [2, 21, 9, 33], [10, 21, 1, 1], {}],
  ];
  for (const [name, xs, ws, opts] of cases) {
    it(name, async () => {
      const x = toF32(randomArray(xs, 81));
      const w = toF32(randomArray(ws, 82));
      const y = refConv2d(x, w, opts);
      const dy = toF32(randomArray(y.shape, 83));
      const want = refConv2dBackward(x, w, dy, opts).dx;
      const got = await E.tidyAsync(async () => {
        const xt = E.param(E.fromArray(x.data, xs));
        const yt = E.conv2d(xt, E.fromArray(w.data, ws), opts as E.Conv2dOptions);
        expectClose((await yt.data()) as Float32Array, y.data, 1e-4, `${name} forward`);
        const [gx] = E.grad(yt, [xt], E.fromArray(dy.data, dy.shape));
        return (await gx!.data()) as Float32Array;
      });
      expectClose(got, want.data, 1e-4, `${name} dx`);
    });
  }
});

describe('tiled conv variants: the whole weight gradient over several tiles and splits', () => {
  // Columns (Cin x kept taps) over several 32-wide blocks, channels over 16-wide blocks, positions
  // over several splits and passes; masks with and without colour groups (the centre tap's rule).
  const cases: [string, number[], number[], RefConv2dOptions][] = [
    ['5x5 B, 20 x 35, Cin 18, Cout 21', [2, 18, 20, 35], [21, 18, 5, 5], { padding: 2, mask: { type: 'B' } }],
    ['3x3 stride 2, 23 x 37, asymmetric padding', [3, 5, 23, 37], [11, 5, 3, 3], { stride: 2, padding: [1, 0, 0, 1] }],
    ['vstack 5x5 with an extra top row, 17 x 17', [2, 7, 17, 17], [6, 7, 5, 5], { padding: [3, 2, 2, 2], mask: { type: 'vstack' } }],
    ['1x1, 9 x 33, Cin 21, Cout 17', [2, 21, 9, 33], [17, 21, 1, 1], {}],
    ['7x7 A, Cin 1 (the PixelCNN input layer)', [3, 1, 13, 11], [5, 1, 7, 7], { padding: 3, mask: { type: 'A' } }],
    ['3x3 A groups 3, 7 -> 8', [2, 7, 9, 8], [8, 7, 3, 3], { padding: 1, mask: { type: 'A', groups: 3 } }],
    ['1x1 B groups 3, 6 -> 9', [2, 6, 5, 7], [9, 6, 1, 1], { mask: { type: 'B', groups: 3 } }],
    ['1x5 B (a horizontal stack), 5 x 19', [3, 4, 5, 19], [6, 4, 1, 5], { padding: [0, 0, 2, 2], mask: { type: 'B' } }],
    ['1x1 A, no colour groups: no tap kept', [2, 3, 4, 5], [4, 3, 1, 1], { mask: { type: 'A' } }],
  ];
  for (const [name, xs, ws, opts] of cases) {
    it(name, async () => {
      const x = toF32(randomArray(xs, 91));
      const w = toF32(randomArray(ws, 92));
      const y = refConv2d(x, w, opts);
      const dy = toF32(randomArray(y.shape, 93));
      const want = refConv2dBackward(x, w, dy, opts).dw;
      const kernel: [number, number] = [ws[2], ws[3]];
      for (const splits of [undefined, 1, 3]) {
        const got = await E.tidyAsync(async () => {
          const xt = E.fromArray(x.data, xs);
          const gy = E.fromArray(dy.data, dy.shape);
          const dw = splits === undefined
            ? E.tidy(() => {
                const wt = E.param(E.fromArray(w.data, ws));
                return E.grad(E.conv2d(xt, wt, opts as E.Conv2dOptions), [wt], gy)[0]!;
              })
            : conv2dWeightGradForTest(xt, gy, kernel, opts as E.Conv2dOptions, splits, 'tiled');
          return (await dw.data()) as Float32Array;
        });
        // Each weight sums up to 2,100 float32 products (n x ho x wo), a few hundred per thread in turn.
        expectClose(got, want.data, 3e-4, `${name} dw (splits ${splits ?? 'chosen'})`);
        // Masked taps are exact zeros, not small numbers.
        want.data.forEach((v, i) => {
          if (v === 0) expect(got[i], `${name} tap ${i}`).toBe(0);
        });
      }
    });
  }
  it('splits the positions so a large GPU gets enough workgroups, each split several passes', () => {
    // Table-1's 5x5 vstack layer at batch 32: 2 x 13 tiles, 25,088 positions.
    expect(tiledWeightGradSplits(32 * 28 * 28, 26)).toEqual({ splits: 40, chunk: 640 });
    // Few positions: one split.
    expect(tiledWeightGradSplits(200, 4)).toEqual({ splits: 1, chunk: 224 });
    // Many tiles already: one split.
    expect(tiledWeightGradSplits(100000, 5000).splits).toBe(1);
    // At most 64 splits.
    expect(tiledWeightGradSplits(1 << 22, 1).splits).toBe(64);
  });
});

describe('the conv variant chooser', () => {
  const fake = (ms: Record<string, number>): { timer: ConvTimer; calls: string[] } => {
    const calls: string[] = [];
    const timer: ConvTimer = async (direction, variant, shape) => {
      calls.push(`${direction}:${variant}:${shape}`);
      return ms[`${direction}:${variant}`] ?? 1;
    };
    return { timer, calls };
  };
  it('picks the fastest per direction by measurement and remembers it per adapter', async () => {
    const store = memoryStore();
    const { timer, calls } = fake({ 'forward:cpu': 5, 'forward:tiled': 2, 'backwardInput:cpu': 3, 'backwardInput:tiled': 4, 'backwardWeight:tiled': 0.5 });
    const report = await chooseConvVariants({ store, timer, key: 'adapter-1', reps: 2 });
    expect(report.choice).toEqual({ forward: 'tiled', backwardInput: 'cpu', backwardWeight: 'tiled' });
    expect(report.source).toBe('measured');
    expect(convVariants()).toEqual({ forward: 'tiled', backwardInput: 'cpu', backwardWeight: 'tiled' });
    // a warm-up and 2 timed runs per (direction, variant, shape)
    const shapes = report.timings.forward.cpu.length;
    expect(calls.length).toBe(3 * 2 * shapes * 3);
    expect(convVariantReport()).toEqual(report);

    // Remembered: the same adapter key does not time again.
    const again = fake({});
    const stored = await chooseConvVariants({ store, timer: again.timer, key: 'adapter-1' });
    expect(again.calls).toEqual([]);
    expect(stored.source).toBe('stored');
    expect(stored.choice).toEqual({ forward: 'tiled', backwardInput: 'cpu', backwardWeight: 'tiled' });

    // Another adapter measures again.
    const other = fake({ 'forward:cpu': 1, 'forward:tiled': 9, 'backwardInput:cpu': 9, 'backwardInput:tiled': 1 });
    const r3 = await chooseConvVariants({ store, timer: other.timer, key: 'adapter-2' });
    expect(r3.choice).toEqual({ forward: 'cpu', backwardInput: 'tiled', backwardWeight: 'cpu' });
    expect(other.calls.length).toBeGreaterThan(0);
    setConvVariants({ forward: 'tiled', backwardInput: 'tiled', backwardWeight: 'tiled' });
  });
  it('ignores a malformed stored entry and measures', async () => {
    const store = memoryStore();
    store.set('adapter-3', '{"choice":{"forward":"warp"}}');
    const { timer, calls } = fake({ 'forward:tiled': 0.5 });
    const r = await chooseConvVariants({ store, timer, key: 'adapter-3' });
    expect(r.source).toBe('measured');
    expect(r.choice.forward).toBe('tiled');
    expect(calls.length).toBeGreaterThan(0);
    setConvVariants({ forward: 'tiled', backwardInput: 'tiled', backwardWeight: 'tiled' });
  });
  it('the adapter key names vendor, architecture and description', () => {
    expect(adapterKey({ vendor: 'v', architecture: 'a', description: 'd' })).toBe('conv-variants/v2/v|a|d');
  });
  it('the real timer runs both variants on this adapter', async () => {
    const report = await chooseConvVariants({ store: memoryStore(), key: 'real', reps: 1, quick: true });
    for (const d of ['forward', 'backwardInput', 'backwardWeight'] as const) {
      for (const v of ['cpu', 'tiled'] as const) for (const ms of report.timings[d][v]) expect(ms).toBeGreaterThan(0);
    }
    setConvVariants({ forward: 'tiled', backwardInput: 'tiled', backwardWeight: 'tiled' });
  });
});
