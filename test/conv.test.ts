import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { conv2dWeightGradForTest, weightGradSplits } from '../src/engine/ops/conv';
import {
  refConv2d,
  refConv2dBackward,
  refConvTranspose2d,
  refConvTranspose2dBackward,
  refGate,
  refGateWith,
  refMaskKeeps,
  type RefConv2dOptions,
} from '../src/engine/reference/conv';
import type { NDArray } from '../src/engine/reference/ndarray';
import { checkOp, expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';
import { convCase } from './support/conv-case';

beforeAll(useGpu);

describe('conv2d: kernel sizes, stride, padding', () => {
  it('1x1', () => convCase('1x1', { cin: 3, cout: 5, h: 7, w: 6, kh: 1, kw: 1 }, {}));
  it('1x1, eight channels per thread: Cout 13 (a partial upper half), width 11', () =>
    convCase('1x1 Cout 13', { cin: 5, cout: 13, h: 5, w: 11, kh: 1, kw: 1 }, { bias: true }, 31));
  it('1x1, eight channels per thread: Cout 12 (the last block has no upper half)', () =>
    convCase('1x1 Cout 12', { cin: 4, cout: 12, h: 6, w: 9, kh: 1, kw: 1 }, {}, 32));
  it('1x1, Cin 13 and 12 (partial channel blocks of the input gradient)', async () => {
    await convCase('1x1 Cin 13', { cin: 13, cout: 5, h: 4, w: 10, kh: 1, kw: 1 }, {}, 35);
    await convCase('1x1 Cin 12', { n: 3, cin: 12, cout: 9, h: 5, w: 6, kh: 1, kw: 1 }, { bias: true }, 36);
  });
  it('1x1, planes flattened: rows cropped above and below (a band of input rows), Cout 12', () =>
    convCase('1x1 band', { n: 3, cin: 5, cout: 12, h: 9, w: 5, kh: 1, kw: 1 }, { padding: [-2, -1, 0, 0], bias: true }, 37));
  it('1x1 with padding on every side (not flattened; blocks partly outside the input), Cout 9', () =>
    convCase('1x1 padded', { cin: 3, cout: 9, h: 5, w: 13, kh: 1, kw: 1 }, { padding: [1, 0, 1, 2], residual: true }, 38));
  it('1x1, stride 2, padding, Cin 7', () => convCase('1x1 s2', { cin: 7, cout: 6, h: 9, w: 8, kh: 1, kw: 1 }, { stride: 2, padding: [1, 0, 0, 1] }, 7));
  it('3x3, padding 1', () => convCase('3x3', { cin: 3, cout: 5, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1 }));
  it('5x5, padding 2', () => convCase('5x5', { cin: 3, cout: 5, h: 9, w: 7, kh: 5, kw: 5 }, { padding: 2 }, 2));
  it('7x7, padding 3', () => convCase('7x7', { cin: 2, cout: 5, h: 8, w: 9, kh: 7, kw: 7 }, { padding: 3 }, 3));
  it('1x5, padding left/right 2', () => convCase('1x5', { cin: 3, cout: 5, h: 7, w: 9, kh: 1, kw: 5 }, { padding: [0, 0, 2, 2] }));
  it('2x3 (even height), asymmetric padding', () => convCase('2x3', { cin: 3, cout: 5, h: 8, w: 7, kh: 2, kw: 3 }, { padding: [1, 0, 2, 1] }));
  it('3x3 no padding (valid)', () => convCase('3x3 valid', { cin: 3, cout: 5, h: 9, w: 8, kh: 3, kw: 3 }, {}));
  it('stride 2, 3x3, padding 1', () => convCase('s2 3x3', { cin: 3, cout: 5, h: 9, w: 8, kh: 3, kw: 3 }, { stride: 2, padding: 1 }));
  it('stride 2, 5x5, asymmetric padding', () =>
    convCase('s2 5x5', { cin: 3, cout: 5, h: 11, w: 9, kh: 5, kw: 5 }, { stride: 2, padding: [2, 1, 1, 2] }, 4));
  it('stride 2, 2x2, no padding', () => convCase('s2 2x2', { cin: 3, cout: 5, h: 8, w: 7, kh: 2, kw: 2 }, { stride: 2 }));
  it('partial channel blocks: Cin 7, Cout 9', () => convCase('7->9', { cin: 7, cout: 9, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1 }, 5));
  it('one output channel (direct path)', () => convCase('Cout 1', { cin: 3, cout: 1, h: 7, w: 9, kh: 3, kw: 3 }, { padding: 1, bias: true }));
  it('one input channel, two output channels', () => convCase('1->2', { cin: 1, cout: 2, h: 9, w: 7, kh: 5, kw: 5 }, { padding: 2 }));
  it('batch 8: split-K weight gradient', () => convCase('split-K', { n: 8, cin: 2, cout: 3, h: 9, w: 8, kh: 3, kw: 3 }, { padding: 1 }, 6));
});

// Rows 4 past a multiple of 8 wide take conv_forward_four_rows (conv.ts's fourRows()).
describe('conv2d: four rows of 4 positions per thread', () => {
  it('vstack 5x5 with one extra zero row on top, 13 output rows (the blank one, then 3 groups of 4)', () =>
    convCase('four rows vstack tall', { cin: 3, cout: 6, h: 12, w: 12, kh: 5, kw: 5 }, { padding: [3, 2, 2, 2], mask: { type: 'vstack' }, bias: true }, 46));
  it('5x5, padding 2, 6x20 (2 rows past the last group of 4)', () =>
    convCase('four rows 6x20', { cin: 2, cout: 5, h: 6, w: 20, kh: 5, kw: 5 }, { padding: 2 }, 47));
  it('3x3, padding 1, 4x4', () => convCase('four rows 3x3', { cin: 3, cout: 5, h: 4, w: 4, kh: 3, kw: 3 }, { padding: 1 }, 41));
  it('7x7, padding 3, 8x12, Cin 2', () => convCase('four rows 7x7', { cin: 2, cout: 6, h: 8, w: 12, kh: 7, kw: 7 }, { padding: 3, bias: true }, 42));
  it('vstack 5x5 with gate, bias and cond, 8x12', () =>
    convCase('four rows vstack', { cin: 3, cout: 6, h: 8, w: 12, kh: 5, kw: 5 }, { padding: [2, 2, 2, 2], mask: { type: 'vstack' }, gate: true, bias: true, cond: true }, 43));
  it('masked B 5x5 with a pre-residual, 12x4', () =>
    convCase('four rows B', { cin: 3, cout: 9, h: 12, w: 4, kh: 5, kw: 5 }, { padding: 2, mask: { type: 'B' }, preResidual: true }, 44));
  it('masked A 3x5, residual, bottom row cropped, 4x12', () =>
    convCase('four rows A', { n: 3, cin: 2, cout: 4, h: 6, w: 12, kh: 3, kw: 5 }, { padding: [1, -1, 2, 2], mask: { type: 'A' }, residual: true }, 45));
});

// Output rows on top that see only padding (conv.ts's blankTopRows()) are written from the epilogue
// alone, and the two-row and four-row blocks start below them.
describe('conv2d: blank rows on top', () => {
  it('four rows: vstack 5x5, one blank row and 13 below it (a partial group), gate, bias and cond', () =>
    convCase('blank four rows', { cin: 3, cout: 6, h: 13, w: 12, kh: 5, kw: 5 }, { padding: [3, 2, 2, 2], mask: { type: 'vstack' }, gate: true, bias: true, cond: true }, 48));
  it('two rows of 8: vstack 5x5, one blank row and 6 below it, width 9, bias and pre-residual', () =>
    convCase('blank two rows', { n: 3, cin: 2, cout: 5, h: 6, w: 9, kh: 5, kw: 5 }, { padding: [3, 2, 2, 2], mask: { type: 'vstack' }, bias: true, preResidual: true }, 49));
  it('two blank rows: vstack 5x5 padded 4 on top, cond and residual', () =>
    convCase('blank two', { cin: 3, cout: 4, h: 8, w: 12, kh: 5, kw: 5 }, { padding: [4, 1, 2, 2], mask: { type: 'vstack' }, cond: true, residual: true }, 50));
  it('unmasked 3x3 padded 3 on top: one blank row, gate', () =>
    convCase('blank unmasked', { cin: 2, cout: 6, h: 7, w: 7, kh: 3, kw: 3 }, { padding: [3, 0, 1, 1], gate: true, bias: true }, 51));
});

describe('conv2d: fused epilogue', () => {
  it('bias', () => convCase('bias', { cin: 3, cout: 5, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1, bias: true }));
  it('residual', () => convCase('residual', { cin: 3, cout: 5, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1, residual: true }));
  it('gate', () => convCase('gate', { cin: 3, cout: 6, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1, gate: true }));
  it('gate with Cout 2', () => convCase('gate 2', { cin: 3, cout: 2, h: 7, w: 9, kh: 3, kw: 3 }, { padding: 1, gate: true, bias: true }));
  it('gate + bias + residual, stride 2', () =>
    convCase('gate+bias+res', { cin: 3, cout: 10, h: 9, w: 7, kh: 3, kw: 3 }, { stride: 2, padding: 1, gate: true, bias: true, residual: true }));
  it('cond (no gate)', () => convCase('cond', { cin: 3, cout: 5, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1, cond: true }, 11));
  it('cond + gate + bias, stride 2, partial channel block', () =>
    convCase('cond+gate', { n: 3, cin: 3, cout: 10, h: 9, w: 7, kh: 3, kw: 3 }, { stride: 2, padding: 1, gate: true, bias: true, cond: true }, 12));
  it('cond + gate with Cout 2', () => convCase('cond gate 2', { cin: 3, cout: 2, h: 7, w: 9, kh: 3, kw: 3 }, { padding: 1, gate: true, cond: true }, 13));
  it('cond + gate + residual, 1x1', () =>
    convCase('cond+gate+res 1x1', { n: 3, cin: 5, cout: 6, h: 5, w: 7, kh: 1, kw: 1 }, { gate: true, cond: true, residual: true, bias: true }, 14));
  it('cond + gate + residual, 1x1, Cout 20 (eight channels per thread)', () =>
    convCase('cond+gate+res 1x1 20', { n: 2, cin: 7, cout: 20, h: 4, w: 13, kh: 1, kw: 1 }, { gate: true, cond: true, residual: true, bias: true }, 33));
  it('pre-residual + cond, 1x1, Cout 12 (eight channels per thread)', () =>
    convCase('preRes+cond 1x1 12', { n: 2, cin: 3, cout: 12, h: 5, w: 6, kh: 1, kw: 1 }, { preResidual: true, cond: true }, 34));
  it('pre-residual (no gate)', () => convCase('preRes', { cin: 3, cout: 5, h: 7, w: 6, kh: 3, kw: 3 }, { padding: 1, preResidual: true }, 15));
  it('pre-residual + cond + gate + bias, 1x5 mask B (the horizontal stack)', () =>
    convCase('hstack fused', { n: 3, cin: 3, cout: 6, h: 5, w: 9, kh: 1, kw: 5 }, { padding: [0, 0, 2, 2], mask: { type: 'B' }, gate: true, bias: true, preResidual: true, cond: true }, 16));
  it('pre-residual + cond + gate, 1x3 mask A, Cout 10', () =>
    convCase('hstack A fused', { cin: 1, cout: 10, h: 5, w: 7, kh: 1, kw: 3 }, { padding: [0, 0, 1, 1], mask: { type: 'A' }, gate: true, preResidual: true, cond: true }, 17));
});

describe('conv2d: negative padding crops', () => {
  it('1x1 without the last row (the vertical-to-horizontal link)', () =>
    convCase('1x1 crop', { n: 3, cin: 5, cout: 6, h: 8, w: 7, kh: 1, kw: 1 }, { padding: [0, -1, 0, 0], bias: true }, 21));
  it('3x3, cropped top and left, padded bottom', () =>
    convCase('3x3 crop', { cin: 3, cout: 5, h: 9, w: 8, kh: 3, kw: 3 }, { padding: [-1, 2, -2, 1] }, 22));
  it('stride 2, 3x3, cropped on every side', () =>
    convCase('s2 crop', { cin: 3, cout: 5, h: 11, w: 10, kh: 3, kw: 3 }, { stride: 2, padding: [-1, -1, -1, -2] }, 23));
  it('vstack 5x5 with one extra zero row on top (H+1 output rows)', () =>
    convCase('vstack tall', { cin: 3, cout: 6, h: 7, w: 6, kh: 5, kw: 5 }, { padding: [3, 2, 2, 2], mask: { type: 'vstack' }, bias: true }, 24));
});

describe('conv2d: masks', () => {
  it('A, 5x5', () => convCase('mask A', { cin: 3, cout: 5, h: 9, w: 7, kh: 5, kw: 5 }, { padding: 2, mask: { type: 'A' } }));
  it('B, 3x3', () => convCase('mask B', { cin: 3, cout: 5, h: 7, w: 8, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'B' } }));
  it('vstack, 3x3', () => convCase('vstack', { cin: 3, cout: 5, h: 7, w: 8, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'vstack' } }));
  it('vstack, 5x5 with gate and bias', () =>
    convCase('vstack gate', { cin: 3, cout: 6, h: 9, w: 7, kh: 5, kw: 5 }, { padding: 2, mask: { type: 'vstack' }, gate: true, bias: true }));
  it('hstack A (1x5)', () => convCase('hstack A', { cin: 3, cout: 5, h: 7, w: 9, kh: 1, kw: 5 }, { padding: [0, 0, 2, 2], mask: { type: 'A' } }));
  it('hstack B (1x3) padded one row above and below: output rows outside the input', () =>
    convCase('hstack B rows', { cin: 3, cout: 6, h: 6, w: 9, kh: 1, kw: 3 }, { padding: [1, 1, 1, 1], mask: { type: 'B' }, bias: true }, 52));
  it('hstack B (1x3) with residual', () =>
    convCase('hstack B', { cin: 3, cout: 5, h: 7, w: 9, kh: 1, kw: 3 }, { padding: [0, 0, 1, 1], mask: { type: 'B' }, residual: true }));
  it('A with 3 colour groups', () =>
    convCase('A groups 3', { cin: 3, cout: 6, h: 7, w: 8, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'A', groups: 3 } }));
  it('B with 3 colour groups, 5x5, bias', () =>
    convCase('B groups 3', { cin: 6, cout: 9, h: 7, w: 6, kh: 5, kw: 5 }, { padding: 2, mask: { type: 'B', groups: 3 }, bias: true }, 2));
  it('B with 3 colour groups, gate and residual', () =>
    convCase('B groups gate', { cin: 3, cout: 6, h: 7, w: 7, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'B', groups: 3 }, gate: true, residual: true }, 3));
  it('1x1 B with 3 colour groups (a masked shortcut)', () =>
    convCase('1x1 B groups', { cin: 6, cout: 9, h: 5, w: 7, kh: 1, kw: 1 }, { mask: { type: 'B', groups: 3 }, bias: true }, 4));
  it('A and B with 3 colour groups on channel counts 3 does not divide', () =>
    convCase('B groups 3, odd widths', { cin: 4, cout: 5, h: 6, w: 7, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'B', groups: 3 }, bias: true }, 6));
  it('A with 3 colour groups, 7 in 8 out', () =>
    convCase('A groups 3, odd widths', { cin: 7, cout: 8, h: 5, w: 5, kh: 3, kw: 3 }, { padding: 1, mask: { type: 'A', groups: 3 } }, 7));
  it('1x1 A with 3 colour groups', () => convCase('1x1 A groups', { cin: 3, cout: 6, h: 5, w: 7, kh: 1, kw: 1 }, { mask: { type: 'A', groups: 3 } }, 5));
  it('A, 7x7 (the PixelCNN input layer)', () =>
    convCase('mask A 7x7', { cin: 1, cout: 4, h: 8, w: 9, kh: 7, kw: 7 }, { padding: 3, mask: { type: 'A' } }));
});

// ---- causality ---------------------------------------------------------------------------------------

function randomTensorData(shape: number[], seed: number): Float32Array {
  return Float32Array.from(toF32(randomArray(shape, seed)).data);
}

async function convOut(x: Float32Array, xShape: number[], w: Float32Array, wShape: number[], opts: E.Conv2dOptions): Promise<Float32Array> {
  return E.tidyAsync(async () => {
    const y = E.conv2d(E.fromArray(x, xShape), E.fromArray(w, wShape), opts);
    return (await y.data()) as Float32Array;
  });
}

/** Does changing x at (c, iy, ix) change y at output channel co, position (oy, ox)? Exact comparison. */
async function sees(
  xShape: number[],
  wShape: number[],
  opts: E.Conv2dOptions,
  at: { co: number; oy: number; ox: number },
  pixel: { c: number[]; iy: number; ix: number },
): Promise<boolean> {
  const [, , h, w] = xShape;
  const x = randomTensorData(xShape, 11);
  const wt = randomTensorData(wShape, 12);
  const before = await convOut(x, xShape, wt, wShape, opts);
  const x2 = Float32Array.from(x);
  for (const c of pixel.c) x2[(c * h + pixel.iy) * w + pixel.ix] += 3.25;
  const after = await convOut(x2, xShape, wt, wShape, opts);
  // stride 1 and 'same' padding: the output has the input's height and width
  const i = (at.co * h + at.oy) * w + at.ox;
  return before[i] !== after[i];
}

describe('conv2d: mask causality (exact)', () => {
  const all = [0, 1, 2];
  it('mask A: the centre, pixels to its right and rows below are invisible; above and left are seen', async () => {
    const xs = [1, 3, 7, 7];
    const ws = [3, 3, 5, 5];
    const opts: E.Conv2dOptions = { padding: 2, mask: { type: 'A' } };
    const at = { co: 1, oy: 3, ox: 3 };
    for (const [iy, ix] of [[3, 3], [3, 4], [3, 5], [4, 3], [5, 1], [4, 2]]) {
      expect(await sees(xs, ws, opts, at, { c: all, iy, ix }), `pixel ${iy},${ix}`).toBe(false);
    }
    for (const [iy, ix] of [[3, 2], [3, 1], [2, 3], [1, 5], [2, 1]]) {
      expect(await sees(xs, ws, opts, at, { c: all, iy, ix }), `pixel ${iy},${ix}`).toBe(true);
    }
  });
  it('mask B: the centre is seen, the right and rows below are not', async () => {
    const xs = [1, 3, 7, 7];
    const ws = [3, 3, 3, 3];
    const opts: E.Conv2dOptions = { padding: 1, mask: { type: 'B' } };
    const at = { co: 2, oy: 3, ox: 3 };
    expect(await sees(xs, ws, opts, at, { c: all, iy: 3, ix: 3 })).toBe(true);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 3, ix: 4 })).toBe(false);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 4, ix: 3 })).toBe(false);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 4, ix: 2 })).toBe(false);
  });
  it('colour groups: at the centre, A lets group gi reach only go > gi, B go >= gi', async () => {
    const xs = [1, 3, 5, 5];
    const ws = [6, 3, 3, 3];
    for (const type of ['A', 'B'] as const) {
      const opts: E.Conv2dOptions = { padding: 1, mask: { type, groups: 3 } };
      for (let ci = 0; ci < 3; ci++) {
        for (let co = 0; co < 6; co++) {
          const go = co % 3;
          const visible = type === 'A' ? ci < go : ci <= go;
          const got = await sees(xs, ws, opts, { co, oy: 2, ox: 2 }, { c: [ci], iy: 2, ix: 2 });
          expect(got, `${type}: input channel ${ci} -> output channel ${co}`).toBe(visible);
        }
        // pixels to the left stay visible to every group
        expect(await sees(xs, ws, opts, { co: 0, oy: 2, ox: 2 }, { c: [ci], iy: 2, ix: 1 })).toBe(true);
      }
    }
  });
  it('vstack: rows below are invisible, the whole current row is seen', async () => {
    const xs = [1, 3, 7, 7];
    const ws = [3, 3, 3, 3];
    const opts: E.Conv2dOptions = { padding: 1, mask: { type: 'vstack' } };
    const at = { co: 0, oy: 3, ox: 3 };
    expect(await sees(xs, ws, opts, at, { c: all, iy: 4, ix: 3 })).toBe(false);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 4, ix: 2 })).toBe(false);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 3, ix: 4 })).toBe(true);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 2, ix: 3 })).toBe(true);
  });
  it('hstack A (1x5): only pixels to the left in the same row are seen', async () => {
    const xs = [1, 3, 7, 7];
    const ws = [3, 3, 1, 5];
    const opts: E.Conv2dOptions = { padding: [0, 0, 2, 2], mask: { type: 'A' } };
    const at = { co: 1, oy: 3, ox: 3 };
    expect(await sees(xs, ws, opts, at, { c: all, iy: 3, ix: 3 })).toBe(false);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 3, ix: 4 })).toBe(false);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 2, ix: 3 })).toBe(false);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 3, ix: 2 })).toBe(true);
    expect(await sees(xs, ws, opts, at, { c: all, iy: 3, ix: 1 })).toBe(true);
  });
});

describe('conv2d: weights at masked taps', () => {
  const cases: [string, number[], E.ConvMask, number][] = [
    ['A, groups 3, 5x5', [6, 3, 5, 5], { type: 'A', groups: 3 }, 2],
    ['B, 3x3', [4, 3, 3, 3], { type: 'B' }, 1],
    ['vstack, 3x3', [4, 3, 3, 3], { type: 'vstack' }, 1],
    ['hstack A, 1x5', [4, 3, 1, 5], { type: 'A' }, 2],
    ['1x1 A, groups 3', [6, 3, 1, 1], { type: 'A', groups: 3 }, 0],
  ];
  for (const [name, wShape, mask, pad] of cases) {
    it(`${name}: no effect on the output, exactly zero gradient`, async () => {
      const [cout, cin, kh, kw] = wShape;
      const xShape = [2, cin, 7, 6];
      const padding: [number, number, number, number] = kh === 1 ? [0, 0, pad, pad] : [pad, pad, pad, pad];
      const x = randomTensorData(xShape, 21);
      const w1 = randomTensorData(wShape, 22);
      const w2 = Float32Array.from(w1);
      const masked: number[] = [];
      for (let co = 0; co < cout; co++)
        for (let ci = 0; ci < cin; ci++)
          for (let ky = 0; ky < kh; ky++)
            for (let kx = 0; kx < kw; kx++) {
              const i = ((co * cin + ci) * kh + ky) * kw + kx;
              if (!refMaskKeeps(mask, kh, kw, ky, kx, ci, co)) {
                masked.push(i);
                w2[i] = 1000 * (i % 7) - 3000;
              }
            }
      expect(masked.length).toBeGreaterThan(0);
      const run = (w: Float32Array) =>
        E.tidyAsync(async () => {
          const xt = E.param(E.fromArray(x, xShape));
          const wt = E.param(E.fromArray(w, wShape));
          const y = E.conv2d(xt, wt, { padding, mask });
          const seed = E.fromArray(randomTensorData([...y.shape], 23), y.shape);
          const [gx, gw] = E.grad(y, [xt, wt], seed);
          return { y: (await y.data()) as Float32Array, gx: (await gx!.data()) as Float32Array, gw: (await gw!.data()) as Float32Array };
        });
      const a = await run(w1);
      const b = await run(w2);
      expect(Array.from(b.y)).toEqual(Array.from(a.y));
      expect(Array.from(b.gx)).toEqual(Array.from(a.gx));
      for (const i of masked) {
        expect(a.gw[i], `dW at masked tap ${i}`).toBe(0);
        expect(b.gw[i], `dW at masked tap ${i}`).toBe(0);
      }
    });
  }
});

describe('conv2d: split-K weight gradient', () => {
  it('chooses several splits for small filters and large batches', () => {
    const { splits, chunkRows } = weightGradSplits(32 * 28, 28, 8 * 16 * 5);
    expect(splits).toBeGreaterThan(1);
    expect(splits * chunkRows).toBeGreaterThanOrEqual(32 * 28);
  });
  for (const k of [3, 1]) {
    it(`gives the same dW for 1, 3 and 18 splits (${k}x${k}, mask B, stride 2, padding)`, async () => {
      const xShape = [2, 5, 9, 7];
      const wShape = [5, 5, k, k];
      const opts = { stride: 2 as const, padding: [1, 0, 1, 1] as [number, number, number, number], mask: { type: 'B' as const } };
      const x = toF32(randomArray(xShape, 31));
      const w = toF32(randomArray(wShape, 32));
      const y = refConv2d(x, w, opts);
      const dy = toF32(randomArray(y.shape, 33));
      const want = refConv2dBackward(x, w, dy, opts).dw;
      for (const splits of [1, 3, 18]) {
        const got = await E.tidyAsync(async () => {
          const gw = conv2dWeightGradForTest(E.fromArray(x.data, xShape), E.fromArray(dy.data, dy.shape), [k, k], opts, splits);
          return (await gw.data()) as Float32Array;
        });
        expectClose(got, want.data, 1e-4, `dW with ${splits} splits`);
      }
    });
  }
});

describe('conv2d: shape errors', () => {
  it('a wrong Cin names the op and both shapes', () => {
    E.tidy(() => {
      const x = E.zeros([2, 4, 7, 7]);
      const w = E.zeros([5, 3, 3, 3]);
      expect(() => E.conv2d(x, w)).toThrow(/conv2d.*\[2,4,7,7\].*\[5,3,3,3\]/);
    });
  });
  it('bad mask configurations', () => {
    E.tidy(() => {
      const x = E.zeros([2, 3, 7, 7]);
      const w = E.zeros([5, 3, 3, 3]);
      expect(() => E.conv2d(x, w, { mask: { type: 'A', groups: 0 } })).toThrow(/conv2d.*groups.*\[5,3,3,3\]/);
      expect(() => E.conv2d(x, w, { mask: { type: 'vstack', groups: 3 } })).toThrow(/conv2d.*vstack/);
      expect(() => E.conv2d(x, w, { mask: { type: 'C' } as unknown as E.ConvMask })).toThrow(/conv2d.*mask type/);
      expect(() => E.conv2d(x, w, { mask: { type: 'B', groups: 0 } })).toThrow(/conv2d.*groups/);
    });
  });
  it('other shape errors', () => {
    E.tidy(() => {
      const x = E.zeros([2, 3, 7, 7]);
      expect(() => E.conv2d(x, E.zeros([5, 3, 9, 9]))).toThrow(/conv2d.*9x9/);
      expect(() => E.conv2d(x, E.zeros([5, 3, 3, 3]), { gate: true })).toThrow(/conv2d.*gate.*\[5,3,3,3\]/);
      expect(() => E.conv2d(x, E.zeros([4, 3, 3, 3]), { bias: E.zeros([5]) })).toThrow(/conv2d.*bias \[5\]/);
      expect(() => E.conv2d(x, E.zeros([4, 3, 3, 3]), { padding: 1, residual: E.zeros([2, 4, 6, 7]) })).toThrow(/conv2d.*residual \[2,4,6,7\].*\[2,4,7,7\]/);
      expect(() => E.conv2d(x, E.zeros([4, 3, 3, 3]), { stride: 3 as 2 })).toThrow(/conv2d.*stride/);
      expect(() => E.convTranspose2d(x, E.zeros([4, 3, 3, 3]))).toThrow(/convTranspose2d.*\[2,3,7,7\].*\[4,3,3,3\]/);
      expect(() => E.convTranspose2d(x, E.zeros([3, 4, 3, 3]), { stride: 2, outputPadding: 2 })).toThrow(/convTranspose2d.*outputPadding/);
      expect(() => E.gate(E.zeros([2, 3, 4]))).toThrow(/gate.*\[2,3,4\]/);
      const w = E.zeros([4, 3, 3, 3]);
      expect(() => E.conv2d(x, w, { padding: 1, cond: E.zeros([2, 2]) })).toThrow(/conv2d.*cond \[2,2\].*\[2, 4\]/);
      expect(() => E.conv2d(x, w, { padding: 1, preResidual: E.zeros([2, 4, 7, 6]) })).toThrow(/conv2d.*preResidual \[2,4,7,6\]/);
      expect(() => E.conv2d(x, w, { padding: 1, preResidual: E.zeros([2, 4, 7, 7]), residual: E.zeros([2, 4, 7, 7]) })).toThrow(/conv2d.*not supported/);
      expect(() => E.conv2d(x, w, { padding: [-3, -2, 0, 0] })).toThrow(/conv2d.*empty output/);
      expect(() => E.conv2d(x, w, { padding: 0.5 })).toThrow(/conv2d.*integers/);
      expect(() => E.gate(E.zeros([2, 4, 5, 3]), { rows: [1, 5] })).toThrow(/gate.*rows/);
      expect(() => E.gate(E.zeros([2, 4, 5, 3]), { cond: E.zeros([2, 2]) })).toThrow(/gate.*cond \[2,2\]/);
    });
  });
});

// ---- transposed convolution and gate -------------------------------------------------------------------

function transposeCase(name: string, xShape: number[], wShape: number[], opts: { stride?: 1 | 2; padding?: number; outputPadding?: number }, bias = false, seed = 1) {
  const inputs = [{ shape: xShape }, { shape: wShape }];
  if (bias) inputs.push({ shape: [wShape[1]] });
  return checkOp({
    name,
    inputs,
    seed,
    gpu: (x, w, b) => E.convTranspose2d(x, w, { ...opts, bias: b }),
    ref: (x, w, b) => refConvTranspose2d(x, w, { ...opts, bias: b }),
  });
}

describe('convTranspose2d', () => {
  it('k3 s2 p1 op1 (doubling), bias', () => transposeCase('deconv s2', [2, 3, 4, 5], [3, 5, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }, true));
  it('k3 s2 p1 op0 (odd output)', () => transposeCase('deconv s2 op0', [2, 3, 5, 4], [3, 5, 3, 3], { stride: 2, padding: 1 }, false, 2));
  it('k4 s2 p1', () => transposeCase('deconv k4', [2, 3, 4, 3], [3, 5, 4, 4], { stride: 2, padding: 1 }, false, 3));
  it('k3 s1 p1', () => transposeCase('deconv s1', [2, 3, 7, 6], [3, 5, 3, 3], { stride: 1, padding: 1 }, true));
  it('k2 s1 p0, one output channel', () => transposeCase('deconv k2', [2, 3, 6, 7], [3, 1, 2, 2], {}, false, 4));
  it('doubles 7 -> 14 -> 28 as the upsampling decoder does', async () => {
    await E.tidyAsync(async () => {
      const x = E.zeros([2, 4, 7, 7]);
      const y = E.convTranspose2d(x, E.zeros([4, 3, 3, 3]), { stride: 2, padding: 1, outputPadding: 1 });
      expect(y.shape).toEqual([2, 3, 14, 14]);
      const z = E.convTranspose2d(y, E.zeros([3, 2, 3, 3]), { stride: 2, padding: 1, outputPadding: 1 });
      expect(z.shape).toEqual([2, 2, 28, 28]);
      await z.data();
    });
  });
});

describe('gate', () => {
  it('interleaved channels, NCHW', () => checkOp({ name: 'gate', inputs: [{ shape: [2, 6, 5, 3] }], gpu: (x) => E.gate(x), ref: refGate }));
  it('rank 2', () => checkOp({ name: 'gate 2d', inputs: [{ shape: [3, 8] }], gpu: (x) => E.gate(x), ref: refGate, seed: 2 }));
  it('rank 3', () => checkOp({ name: 'gate 3d', inputs: [{ shape: [3, 4, 5] }], gpu: (x) => E.gate(x), ref: refGate, seed: 3 }));
  it('with cond', () =>
    checkOp({
      name: 'gate cond',
      inputs: [{ shape: [3, 6, 5, 7] }, { shape: [3, 6] }],
      gpu: (x, c) => E.gate(x, { cond: c }),
      ref: (x, c) => refGateWith(x, { cond: c }),
      seed: 4,
    }));
  it('on a band of rows, with cond (the vertical stack: rows 1..H of H+1)', () =>
    checkOp({
      name: 'gate rows',
      inputs: [{ shape: [2, 4, 6, 5] }, { shape: [2, 4] }],
      gpu: (x, c) => E.gate(x, { cond: c, rows: [1, 5] }),
      ref: (x, c) => refGateWith(x, { cond: c, rows: [1, 5] }),
      seed: 5,
    }));
  it('on a band of rows in the middle, no cond', () =>
    checkOp({ name: 'gate rows mid', inputs: [{ shape: [3, 2, 7, 3] }], gpu: (x) => E.gate(x, { rows: [2, 3] }), ref: (x) => refGateWith(x, { rows: [2, 3] }), seed: 6 }));
  it('saturates without NaN', () =>
    checkOp({
      name: 'gate large',
      inputs: [{ shape: [1, 2, 5], fill: (_r, i) => [-90, -20, 0, 20, 90, 90, -90, 3, -3, 0][i], grad: false }],
      gpu: (x) => E.gate(x),
      ref: refGate,
    }));
});

// ---- the float64 backward references against finite differences (CPU only) --------------------------

function fdCheck(loss: (xs: NDArray[]) => number, arrays: NDArray[], analytic: NDArray[], what: string): void {
  const h = 1e-6;
  arrays.forEach((x, k) => {
    const fd: number[] = [];
    for (let i = 0; i < x.data.length; i++) {
      const orig = x.data[i];
      x.data[i] = orig + h;
      const up = loss(arrays);
      x.data[i] = orig - h;
      const down = loss(arrays);
      x.data[i] = orig;
      fd.push((up - down) / (2 * h));
    }
    expectClose(analytic[k].data, fd, 1e-5, `${what}: input ${k}`);
  });
}

function dot(a: NDArray, b: NDArray): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i] * b.data[i];
  return s;
}

describe('float64 backward references', () => {
  const configs: [string, number[], number[], Omit<RefConv2dOptions, 'bias' | 'residual'>][] = [
    ['plain 3x3', [2, 3, 5, 4], [4, 3, 3, 3], { padding: 1 }],
    ['stride 2, asymmetric padding, 2x3', [2, 2, 6, 5], [3, 2, 2, 3], { stride: 2, padding: [1, 0, 2, 1] }],
    ['mask B groups 3, gate', [1, 3, 4, 4], [6, 3, 3, 3], { padding: 1, mask: { type: 'B', groups: 3 }, gate: true }],
    ['mask A, 1x3', [2, 2, 3, 5], [2, 2, 1, 3], { padding: [0, 0, 1, 1], mask: { type: 'A' } }],
  ];
  for (const [name, xs, ws, base] of configs) {
    it(`refConv2dBackward: ${name}`, () => {
      const x = randomArray(xs, 41);
      const w = randomArray(ws, 42);
      const bias = randomArray([ws[0]], 43);
      const y0 = refConv2d(x, w, { ...base, bias });
      const residual = randomArray(y0.shape, 44);
      const dy = randomArray(y0.shape, 45);
      const opts = (b: NDArray, r: NDArray): RefConv2dOptions => ({ ...base, bias: b, residual: r });
      const g = refConv2dBackward(x, w, dy, opts(bias, residual));
      fdCheck(([a, b, c, d]) => dot(refConv2d(a, b, opts(c, d)), dy), [x, w, bias, residual], [g.dx, g.dw, g.dbias, g.dresidual], name);
    });
  }
  const condConfigs: [string, number[], number[], Omit<RefConv2dOptions, 'bias' | 'preResidual' | 'cond'>][] = [
    ['gate, 3x3', [2, 3, 5, 4], [4, 3, 3, 3], { padding: 1, gate: true }],
    ['no gate, stride 2, crop', [3, 2, 6, 5], [3, 2, 2, 3], { stride: 2, padding: [1, -1, 2, 0] }],
    ['gate, hstack B 1x3', [2, 2, 3, 5], [6, 2, 1, 3], { padding: [0, 0, 1, 1], mask: { type: 'B' }, gate: true }],
  ];
  for (const [name, xs, ws, base] of condConfigs) {
    it(`refConv2dBackward with pre-residual and cond: ${name}`, () => {
      const x = randomArray(xs, 61);
      const w = randomArray(ws, 62);
      const bias = randomArray([ws[0]], 63);
      const pre = refConv2d(x, w, { ...base, gate: false });
      const preResidual = randomArray(pre.shape, 64);
      const cond = randomArray([xs[0], ws[0]], 65);
      const dy = randomArray(refConv2d(x, w, base).shape, 66);
      const opts = (b: NDArray, r: NDArray, c: NDArray): RefConv2dOptions => ({ ...base, bias: b, preResidual: r, cond: c });
      const g = refConv2dBackward(x, w, dy, opts(bias, preResidual, cond));
      fdCheck(([a, b, c, d, e]) => dot(refConv2d(a, b, opts(c, d, e)), dy), [x, w, bias, preResidual, cond], [g.dx, g.dw, g.dbias, g.dpreResidual, g.dcond], name);
    });
  }
  it('refConvTranspose2dBackward: k3 s2 p1 op1', () => {
    const opts = { stride: 2, padding: 1, outputPadding: 1 };
    const x = randomArray([2, 2, 3, 4], 51);
    const w = randomArray([2, 3, 3, 3], 52);
    const bias = randomArray([3], 53);
    const dy = randomArray(refConvTranspose2d(x, w, opts).shape, 54);
    const g = refConvTranspose2dBackward(x, w, dy, { ...opts, bias });
    fdCheck(([a, b, c]) => dot(refConvTranspose2d(a, b, { ...opts, bias: c }), dy), [x, w, bias], [g.dx, g.dw, g.dbias], 'transpose');
  });
});
