import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import * as R from '../src/engine/reference/shape';
import { checkOp } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

describe('reshape and transpose', () => {
  it('reshape is a view with a gradient (and infers -1)', () =>
    checkOp({
      name: 'reshape',
      inputs: [{ shape: [3, 5, 7] }],
      gpu: (x) => E.mul(E.reshape(x, [5, -1]), E.reshape(x, [5, 21])),
      ref: (x) => ({ shape: [5, 21], data: x.data.map((v) => v * v) }),
    }));
  it('transpose rank 4, perm [2, 0, 3, 1]', () =>
    checkOp({ name: 'transpose', inputs: [{ shape: [3, 5, 2, 7] }], gpu: (x) => E.transpose(x, [2, 0, 3, 1]), ref: (x) => R.transpose(x, [2, 0, 3, 1]) }));
  it('transpose rank 5, NHWC-style perm [0, 4, 1, 2, 3]', () =>
    checkOp({ name: 'transpose', inputs: [{ shape: [2, 3, 5, 3, 9] }], gpu: (x) => E.transpose(x, [0, 4, 1, 2, 3]), ref: (x) => R.transpose(x, [0, 4, 1, 2, 3]) }));
  it('transpose default reverses axes', () =>
    checkOp({ name: 'transpose', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.transpose(x), ref: (x) => R.transpose(x, [2, 1, 0]) }));
});

describe('slice, pad, crop', () => {
  it('slice (interior region of rank 3)', () =>
    checkOp({ name: 'slice', inputs: [{ shape: [5, 7, 9] }], gpu: (x) => E.slice(x, [1, 2, 3], [3, 4, -1]), ref: (x) => R.slice(x, [1, 2, 3], [3, 4, 6]) }));
  it('pad asymmetric', () => {
    const pads = [[0, 1], [2, 0], [1, 3]] as const;
    return checkOp({ name: 'pad', inputs: [{ shape: [3, 5, 7] }], gpu: (x) => E.pad(x, pads), ref: (x) => R.pad(x, pads) });
  });
  it('pad 7x7 -> 8x8 bottom/right (the encoder pad) and crop back', () => {
    const pads = [[0, 0], [0, 0], [0, 1], [0, 1]] as const;
    return checkOp({
      name: 'pad+crop',
      inputs: [{ shape: [2, 3, 7, 7] }],
      gpu: (x) => E.crop(E.mul(E.pad(x, pads), E.pad(x, pads)), pads),
      ref: (x) => ({ shape: x.shape, data: x.data.map((v) => v * v) }),
    });
  });
  it('crop asymmetric (8x8 -> 7x7 top-left and more)', () => {
    const crops = [[1, 0], [0, 2], [0, 1], [0, 1]] as const;
    return checkOp({ name: 'crop', inputs: [{ shape: [3, 5, 8, 8] }], gpu: (x) => E.crop(x, crops), ref: (x) => R.crop(x, crops) });
  });
});

describe('concat', () => {
  const shapes = (axis: number): number[][] =>
    [2, 3, 1].map((k) => [3, 5, 7].map((d, i) => (i === axis ? k : d)));
  for (const axis of [0, 1, 2]) {
    it(`concat of three along axis ${axis}`, () =>
      checkOp({
        name: `concat axis ${axis}`,
        inputs: shapes(axis).map((shape) => ({ shape })),
        gpu: (...xs) => E.concat(xs, axis),
        ref: (...xs) => R.concat(xs, axis),
      }));
  }
  it('concat along the last axis written as -1, with one input not differentiated', () =>
    checkOp({
      name: 'concat -1',
      inputs: [{ shape: [3, 5, 2] }, { shape: [3, 5, 7], grad: false }],
      gpu: (a, b) => E.concat([a, b], -1),
      ref: (a, b) => R.concat([a, b], 2),
    }));
  // Contiguous runs of 16 or more elements go through copy.wgsl's copy_rows (runs of 64).
  it('concat along channels with rows of 143 and 429 elements (runs of 64, a partial last run)', () =>
    checkOp({
      name: 'concat rows',
      inputs: [{ shape: [2, 1, 13, 11] }, { shape: [2, 3, 13, 11] }],
      gpu: (a, b) => E.concat([a, b], 1),
      ref: (a, b) => R.concat([a, b], 1),
    }));
  it('pad and slice with rows of 20 and 37 elements', () => {
    const pads = [[1, 0], [0, 2], [3, 1], [2, 15]] as const;
    return checkOp({
      name: 'pad+slice rows',
      inputs: [{ shape: [2, 3, 5, 20] }],
      gpu: (x) => E.slice(E.pad(x, pads), [0, 1, 2, 1], [3, 4, 6, 36]),
      ref: (x) => R.slice(R.pad(x, pads), [0, 1, 2, 1], [3, 4, 6, 36]),
    });
  });
  it('concat of u32 tensors', async () => {
    const a = E.fromArray([1, 2, 3, 4], [2, 2], 'u32');
    const b = E.fromArray([5, 6], [2, 1], 'u32');
    const y = E.concat([a, b], 1);
    expect(y.dtype).toBe('u32');
    expect(Array.from(await y.data())).toEqual([1, 2, 5, 3, 4, 6]);
  });
});

describe('depthToSpace / spaceToDepth', () => {
  it('channel ordering matches a hand-written example (C = 2, r = 2)', async () => {
    // x channels 0..7 at one pixel; TF NHWC depth_to_space gives out(dy, dx, c) = in[(dy*2+dx)*2 + c]:
    // c = 0 -> [[0, 2], [4, 6]], c = 1 -> [[1, 3], [5, 7]].
    const x = E.fromArray([0, 1, 2, 3, 4, 5, 6, 7], [1, 8, 1, 1]);
    const y = E.depthToSpace(x, 2);
    expect(y.shape).toEqual([1, 2, 2, 2]);
    expect(Array.from(await y.data())).toEqual([0, 2, 4, 6, 1, 3, 5, 7]);
    expect(Array.from(await E.spaceToDepth(y, 2).data())).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
  it('two pixels wide (C = 1, r = 2): [1,4,1,2] -> [1,1,2,4]', async () => {
    // channel k at pixel w holds (dy, dx) = (k >> 1, k & 1); values are 10*k + w
    const x = E.fromArray([0, 1, 10, 11, 20, 21, 30, 31], [1, 4, 1, 2]);
    expect(Array.from(await E.depthToSpace(x, 2).data())).toEqual([0, 10, 1, 11, 20, 30, 21, 31]);
  });
  it('depthToSpace r = 2 on odd H, W', () =>
    checkOp({ name: 'depthToSpace', inputs: [{ shape: [2, 12, 3, 5] }], gpu: (x) => E.depthToSpace(x, 2), ref: (x) => R.depthToSpace(x, 2) }));
  it('depthToSpace r = 3', () =>
    checkOp({ name: 'depthToSpace', inputs: [{ shape: [1, 18, 3, 1] }], gpu: (x) => E.depthToSpace(x, 3), ref: (x) => R.depthToSpace(x, 3) }));
  it('spaceToDepth r = 2', () =>
    checkOp({ name: 'spaceToDepth', inputs: [{ shape: [2, 3, 6, 10] }], gpu: (x) => E.spaceToDepth(x, 2), ref: (x) => R.spaceToDepth(x, 2) }));
});

describe('embedding', () => {
  it('gathers rows; repeated indices accumulate in the table gradient', () =>
    checkOp({
      name: 'embedding',
      inputs: [{ shape: [3, 11], dtype: 'u32', fill: (r) => Math.floor(r() * 5) }, { shape: [5, 7] }],
      gpu: E.embedding,
      ref: R.embedding,
      fdSamples: 35,
    }));
  it('many rows per index (several scatter chunks), 256-entry table', () =>
    checkOp({
      name: 'embedding',
      inputs: [{ shape: [2, 3, 9, 31], dtype: 'u32', fill: (r) => Math.floor(r() * 256) }, { shape: [256, 3] }],
      gpu: E.embedding,
      ref: R.embedding,
    }));
  it('few table rows, many indices', () =>
    checkOp({
      name: 'embedding',
      inputs: [{ shape: [1501], dtype: 'u32', fill: (r) => Math.floor(r() * 3) }, { shape: [3, 5] }],
      gpu: E.embedding,
      ref: R.embedding,
      fdSamples: 15,
    }));
});

describe('shape errors name the op', () => {
  it('throws ShapeError', () => {
    const x = E.zeros([2, 3, 4]);
    const u = E.fromArray([0, 1], [2], 'u32');
    expect(() => E.reshape(x, [5, -1])).toThrow(/reshape/);
    expect(() => E.transpose(x, [0, 0, 1])).toThrow(/transpose.*\[2,3,4\]/);
    expect(() => E.slice(x, [0, 2, 0], [2, 2, 4])).toThrow(/slice.*\[2,3,4\]/);
    expect(() => E.pad(x, [[0, 1]])).toThrow(/pad.*\[2,3,4\]/);
    expect(() => E.crop(x, [[0, 0], [2, 2], [0, 0]])).toThrow(/crop.*\[2,3,4\]/);
    expect(() => E.concat([x, E.zeros([2, 4, 4])], 0)).toThrow(/concat.*\[2,4,4\]/);
    expect(() => E.concat([x, x], 3)).toThrow(/concat/);
    expect(() => E.depthToSpace(E.zeros([1, 6, 2, 2]), 2)).toThrow(/depthToSpace.*\[1,6,2,2\]/);
    expect(() => E.spaceToDepth(E.zeros([1, 1, 3, 4]), 2)).toThrow(/spaceToDepth.*\[1,1,3,4\]/);
    expect(() => E.embedding(x, E.zeros([3, 2]))).toThrow(/embedding/);
    expect(() => E.embedding(u, E.zeros([3]))).toThrow(/embedding.*\[3\]/);
    expect(() => E.embedding(u, u)).toThrow(/embedding/);
  });
});
