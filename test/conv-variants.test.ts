// Every conv kernel variant forced on (the GPU-shaped 'tiled' ones here; the CPU-shaped ones are
// test/conv.test.ts's): forward against the float64 reference, gradients against finite
// differences, and the whole input gradient against refConv2dBackward on shapes spanning several
// tiles and channel chunks. Then the chooser, with an injected timer and store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { convVariants, setConvVariants } from '../src/engine/ops/conv';
import { adapterKey, chooseConvVariants, convVariantReport, memoryStore, type ConvTimer } from '../src/engine/ops/conv-variants';
import { refConv2d, refConv2dBackward, refConvTranspose2d, type RefConv2dOptions } from '../src/engine/reference/conv';
import { checkOp, expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';
import { convCase } from './support/conv-case';

beforeAll(async () => {
  await useGpu();
  setConvVariants({ forward: 'tiled', backwardInput: 'tiled' });
});
afterAll(() => setConvVariants({ forward: 'cpu', backwardInput: 'cpu' }));

describe('tiled conv variants: forward and gradients vs float64 and finite differences', () => {
  it('is selected, and runs', async () => {
    expect(convVariants()).toEqual({ forward: 'tiled', backwardInput: 'tiled' });
    const gpu = E.engine().gpu;
    const entries: string[] = [];
    gpu.onDispatch = (spec) => void entries.push(spec.entry);
    try {
      await E.tidyAsync(async () => {
        const x = E.param(E.zeros([1, 2, 5, 5]));
        const y = E.conv2d(x, E.zeros([3, 2, 3, 3]), { padding: 1 });
        await E.grad(y, [x], E.zeros(y.shape))[0]!.data();
      });
    } finally {
      gpu.onDispatch = null;
    }
    expect(entries).toContain('conv_forward_tiled');
    expect(entries).toContain('conv_backward_input_tiled');
    expect(entries).not.toContain('conv_forward');
    expect(entries).not.toContain('conv_backward_input');
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
    const { timer, calls } = fake({ 'forward:cpu': 5, 'forward:tiled': 2, 'backwardInput:cpu': 3, 'backwardInput:tiled': 4 });
    const report = await chooseConvVariants({ store, timer, key: 'adapter-1', reps: 2 });
    expect(report.choice).toEqual({ forward: 'tiled', backwardInput: 'cpu' });
    expect(report.source).toBe('measured');
    expect(convVariants()).toEqual({ forward: 'tiled', backwardInput: 'cpu' });
    // a warm-up and 2 timed runs per (direction, variant, shape)
    const shapes = report.timings.forward.cpu.length;
    expect(calls.length).toBe(2 * 2 * shapes * 3);
    expect(convVariantReport()).toEqual(report);

    // Remembered: the same adapter key does not time again.
    const again = fake({});
    const stored = await chooseConvVariants({ store, timer: again.timer, key: 'adapter-1' });
    expect(again.calls).toEqual([]);
    expect(stored.source).toBe('stored');
    expect(stored.choice).toEqual({ forward: 'tiled', backwardInput: 'cpu' });

    // Another adapter measures again.
    const other = fake({ 'forward:cpu': 1, 'forward:tiled': 9, 'backwardInput:cpu': 9, 'backwardInput:tiled': 1 });
    const r3 = await chooseConvVariants({ store, timer: other.timer, key: 'adapter-2' });
    expect(r3.choice).toEqual({ forward: 'cpu', backwardInput: 'tiled' });
    expect(other.calls.length).toBeGreaterThan(0);
    setConvVariants({ forward: 'tiled', backwardInput: 'tiled' });
  });
  it('ignores a malformed stored entry and measures', async () => {
    const store = memoryStore();
    store.set('adapter-3', '{"choice":{"forward":"warp"}}');
    const { timer, calls } = fake({ 'forward:tiled': 0.5 });
    const r = await chooseConvVariants({ store, timer, key: 'adapter-3' });
    expect(r.source).toBe('measured');
    expect(r.choice.forward).toBe('tiled');
    expect(calls.length).toBeGreaterThan(0);
    setConvVariants({ forward: 'tiled', backwardInput: 'tiled' });
  });
  it('the adapter key names vendor, architecture and description', () => {
    expect(adapterKey({ vendor: 'v', architecture: 'a', description: 'd' })).toBe('conv-variants/v1/v|a|d');
  });
  it('the real timer runs both variants on this adapter', async () => {
    const report = await chooseConvVariants({ store: memoryStore(), key: 'real', reps: 1, quick: true });
    for (const d of ['forward', 'backwardInput'] as const) {
      for (const v of ['cpu', 'tiled'] as const) for (const ms of report.timings[d][v]) expect(ms).toBeGreaterThan(0);
    }
    setConvVariants({ forward: 'tiled', backwardInput: 'tiled' });
  });
});
