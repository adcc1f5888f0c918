// The framework comparison's model description (src/bench/frameworks/spec.ts): pure functions only,
// no GPU. The page checks the same list against our live model; this holds its masks, layout helpers
// and the E.1 parameter count.
import { describe, expect, it } from 'vitest';
import { countParams, deinterleaveForGates, e1Config, flipSpatial, maskTaps, paramShapes, permute } from '../src/bench/frameworks/spec';
import { tapsVisited } from '../src/nn/layers';

describe('framework comparison spec', () => {
  it('masks keep the taps the engine visits', () => {
    for (const [kh, kw] of [[7, 7], [5, 5], [1, 5], [1, 7], [3, 3]] as const) {
      for (const type of ['A', 'B', 'vstack'] as const) {
        if (kh === 1 && type === 'vstack') continue;
        const m = maskTaps(kh, kw, type);
        expect(m.reduce((a, b) => a + b, 0), `${kh}x${kw} ${type}`).toBe(tapsVisited(kh, kw, { type }));
      }
    }
    // 1x5 horizontal stack: A sees the two pixels to the left, B also the centre.
    expect([...maskTaps(1, 5, 'A')]).toEqual([1, 1, 0, 0, 0]);
    expect([...maskTaps(1, 5, 'B')]).toEqual([1, 1, 1, 0, 0]);
    expect([...maskTaps(3, 3, 'vstack')]).toEqual([1, 1, 1, 1, 1, 1, 0, 0, 0]);
  });

  it('permute and flip move values as numpy would', () => {
    // [2, 3] -> [3, 2]
    expect([...permute(Float32Array.from([0, 1, 2, 3, 4, 5]), [2, 3], [1, 0]).data]).toEqual([0, 3, 1, 4, 2, 5]);
    // [o=2, i=1, h=1, w=2] -> [h, w, i, o]
    const p = permute(Float32Array.from([1, 2, 3, 4]), [2, 1, 1, 2], [2, 3, 1, 0]);
    expect(p.shape).toEqual([1, 2, 1, 2]);
    expect([...p.data]).toEqual([1, 3, 2, 4]);
    expect([...flipSpatial(Float32Array.from([1, 2, 3, 4]), [1, 1, 2, 2])]).toEqual([4, 3, 2, 1]);
  });

  it('reorders pre-gate channels even-then-odd, and v2h on both axes', () => {
    const four = Float32Array.from([0, 1, 2, 3]);
    expect([...deinterleaveForGates('pix.input.hstack.bias', four, [4])]).toEqual([0, 2, 1, 3]);
    expect([...deinterleaveForGates('pix.out2.gain', four, [4])]).toEqual([0, 2, 1, 3]);
    expect([...deinterleaveForGates('pix.1.h2h.bias', four, [4])]).toEqual([0, 1, 2, 3]);
    expect([...deinterleaveForGates('pix.out3.bias', four, [4])]).toEqual([0, 1, 2, 3]);
    // v2h [out, in, 1, 1]: rows and columns both reordered.
    const w = Float32Array.from({ length: 16 }, (_, i) => i); // w[o][i] = 4o + i
    const r = deinterleaveForGates('pix.1.v2h.weight', w, [4, 4, 1, 1]);
    const order = [0, 2, 1, 3];
    expect([...r]).toEqual(order.flatMap((o) => order.map((i) => 4 * o + i)));
  });

  it('describes the E.1 model with unique names', () => {
    const shapes = paramShapes(e1Config());
    expect(new Set(shapes.map((s) => s.name)).size).toBe(shapes.length);
    // The encoder's linear maps 64 channels of 4x4 to interleaved (mu, log sigma) for latent 64.
    expect(shapes.find((s) => s.name === 'enc.out.weight')!.shape).toEqual([128, 1024]);
    // The input layer sees the image and the decoder's 32 feature maps.
    expect(shapes.find((s) => s.name === 'pix.input.vstack.weight')!.shape).toEqual([64, 33, 7, 7]);
    expect(countParams(shapes)).toBeGreaterThan(0);
  });
});
