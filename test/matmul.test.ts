import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { linearRef, matmulRef } from '../src/engine/reference/matmul';
import { checkOp, expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

/** Stored shape of an operand given op(X) = [rows, cols]. */
const stored = (rows: number, cols: number, trans: boolean): number[] => (trans ? [cols, rows] : [rows, cols]);

describe('matmul', () => {
  for (const transA of [false, true]) {
    for (const transB of [false, true]) {
      const name = `matmul 7x13 @ 13x5 transA=${transA} transB=${transB}`;
      it(name, () =>
        checkOp({
          name,
          inputs: [{ shape: stored(7, 13, transA) }, { shape: stored(13, 5, transB) }],
          gpu: (a, b) => E.matmul(a, b, { transA, transB }),
          ref: (a, b) => matmulRef(a, b, transA, transB),
        }));
    }
  }
  for (const [transA, transB] of [[false, false], [true, true]] as const) {
    it(`larger odd case 67x45 @ 45x53 transA=${transA} transB=${transB}`, () =>
      checkOp({
        name: 'matmul 67x45x53',
        inputs: [{ shape: stored(67, 45, transA) }, { shape: stored(45, 53, transB) }],
        gpu: (a, b) => E.matmul(a, b, { transA, transB }),
        ref: (a, b) => matmulRef(a, b, transA, transB),
        fdSamples: 24,
      }));
  }
  // Forward and backward of these two cover the vec4 loads of all four transpose combinations.
  for (const [transA, transB] of [[false, false], [true, true]] as const) {
    it(`aligned sizes take the vec4 path: 36x20 @ 20x44 transA=${transA} transB=${transB}`, () =>
      checkOp({
        name: 'matmul aligned',
        inputs: [{ shape: stored(36, 20, transA) }, { shape: stored(20, 44, transB) }],
        gpu: (a, b) => E.matmul(a, b, { transA, transB }),
        ref: (a, b) => matmulRef(a, b, transA, transB),
        fdSamples: 24,
      }));
  }
  it('batched [3,5,6] @ [3,6,7]', () =>
    checkOp({ name: 'bmm', inputs: [{ shape: [3, 5, 6] }, { shape: [3, 6, 7] }], gpu: (a, b) => E.matmul(a, b), ref: (a, b) => matmulRef(a, b) }));
  it('batched with a shared right operand [3,5,6] @ [6,7]^T-stored', () =>
    checkOp({
      name: 'bmm shared',
      inputs: [{ shape: [3, 5, 6] }, { shape: [7, 6] }],
      gpu: (a, b) => E.matmul(a, b, { transB: true }),
      ref: (a, b) => matmulRef(a, b, false, true),
    }));
  it('another launch variant (one row block per workgroup) gives the same result', async () => {
    const a = toF32(randomArray([33, 41], 5));
    const b = toF32(randomArray([41, 29], 6));
    const want = matmulRef(a, b);
    for (const variant of [E.MATMUL_VARIANTS[4]]) {
      const got = await E.tidyAsync(async () => E.matmulWithVariant(E.fromArray(a.data, a.shape), E.fromArray(b.data, b.shape), variant).data());
      expectClose(got, want.data, 1e-4, `variant ${variant.wgX}x${variant.wgY}`);
    }
  });
  it('the K tail ignores whatever lies past the operands in their buffers (NaN here)', async () => {
    const a = toF32(randomArray([7, 13], 8));
    const b = toF32(randomArray([5, 13], 9));
    const want = matmulRef(a, b, false, true);
    const { got, reused, tails } = await E.tidyAsync(async () => {
      // Two NaN-filled buffers of the operands' size class (512 bytes: 91 and 65 floats round up to it),
      // released and flushed so the pool hands them out again (last released, first reused).
      const junk = [E.fromArray(new Float32Array(128).fill(NaN), [128]), E.fromArray(new Float32Array(128).fill(NaN), [128])];
      const junkBuffers = junk.map((t) => t.buffer);
      for (const t of junk) t.dispose();
      // Released buffers return to the free lists at the next submit, and flush() submits only when a
      // dispatch is recorded: record one (without it the operands got other buffers and this test
      // checked nothing).
      E.fill([1], 0);
      E.engine().gpu.flush();
      const at = E.fromArray(a.data, a.shape);
      const bt = E.fromArray(b.data, b.shape);
      const reused = [at, bt].filter((t) => junkBuffers.includes(t.buffer)).length;
      // The operands' buffers really hold NaN past their last element (the whole 512 bytes read back).
      const whole = async (t: E.Tensor): Promise<Float32Array> => new Float32Array(await E.engine().gpu.read(t.buffer, 512));
      const tails = await Promise.all([at, bt].map(async (t) => Array.from((await whole(t)).subarray(t.size)).every(Number.isNaN)));
      return { got: await E.matmul(at, bt, { transB: true }).data(), reused, tails };
    });
    expect(reused, 'both operands sit in recycled NaN buffers').toBe(2);
    expect(tails).toEqual([true, true]);
    expectClose(got, want.data, 1e-4, 'matmul over NaN-tailed buffers');
  });
  it('rejects mismatched shapes with a ShapeError naming both', () =>
    E.tidy(() => {
      const a = E.zeros([3, 4]);
      const b = E.zeros([5, 2]);
      expect(() => E.matmul(a, b)).toThrow(/matmul.*\[3,4\].*\[5,2\]/);
      expect(() => E.matmul(a, b)).toThrow(E.ShapeError);
      expect(() => E.matmul(E.zeros([3]), b)).toThrow(E.ShapeError);
    }));
  it('reports FLOPs', () => expect(E.matmulFlops(256, 256, 256)).toBe(2 * 256 ** 3));
});

describe('linear', () => {
  it('x w^T + b, odd sizes', () =>
    checkOp({
      name: 'linear',
      inputs: [{ shape: [9, 13] }, { shape: [6, 13] }, { shape: [6] }],
      gpu: (x, w, b) => E.linear(x, w, b),
      ref: (x, w, b) => linearRef(x, w, b),
    }));
  it('without bias, aligned sizes', () =>
    checkOp({ name: 'linear nobias', inputs: [{ shape: [8, 16] }, { shape: [12, 16] }], gpu: (x, w) => E.linear(x, w), ref: (x, w) => linearRef(x, w) }));
  it('rejects a wrong weight shape', () =>
    E.tidy(() => {
      expect(() => E.linear(E.zeros([2, 3]), E.zeros([4, 5]))).toThrow(/linear.*\[2,3\].*\[4,5\]/);
      expect(() => E.linear(E.zeros([2, 3]), E.zeros([4, 3]), E.zeros([3]))).toThrow(E.ShapeError);
    }));
});
