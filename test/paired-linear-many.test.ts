// Every gate's z conditioning at once (E.pairedLinearMany, issue 13): with the maps' weights and
// biases as slices of two buffers (as a packed model's are) it takes one dispatch each way; its
// outputs match the float64 reference and its gradients match one pairedLinear per item (itself
// checked against finite differences in paired-linear.test.ts), with gradients gathered in arenas
// (one dispatch) or anywhere else (one per item), and with an item whose output is unused.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { pairedLinearRef } from '../src/engine/reference/matmul';
import { expectClose, randomArray, toF32 } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

const N = 5;
const K = 7;
const UNITS = [3, 1, 5, 2];
/** The item whose output the loss does not use. */
const UNUSED = 2;

const data = (seed: number): { x: Float32Array; a: Float32Array[]; b: Float32Array[]; ba: Float32Array[]; bb: Float32Array[]; c: Float32Array[] } => ({
  x: Float32Array.from(toF32(randomArray([N, K], seed)).data),
  a: UNITS.map((p, i) => Float32Array.from(toF32(randomArray([p, K], seed + 10 + i)).data)),
  b: UNITS.map((p, i) => Float32Array.from(toF32(randomArray([p, K], seed + 20 + i)).data)),
  ba: UNITS.map((p, i) => Float32Array.from(toF32(randomArray([p], seed + 30 + i)).data)),
  bb: UNITS.map((p, i) => Float32Array.from(toF32(randomArray([p], seed + 40 + i)).data)),
  c: UNITS.map((p, i) => Float32Array.from(toF32(randomArray([N, 2 * p], seed + 50 + i)).data)),
});

interface Run {
  y: Float32Array[];
  /** dx, then per item da, db, dba, dbb (null where none). */
  grads: (Float32Array | null)[];
  entries: string[];
}

/**
 * y_i = pairedLinearMany(x, items) and the gradients of sum_i (y_i . c_i) over the used items.
 * mode 'arena': weights and biases slices of two arenas, gradients gathered in two more; 'slices':
 * the same slices, gradients anywhere; 'whole': every tensor its own buffer; 'single': one
 * pairedLinear per item (the reference for the gradients).
 */
async function run(mode: 'arena' | 'slices' | 'whole' | 'single', d: ReturnType<typeof data>): Promise<Run> {
  const gpu = E.engine().gpu;
  const weightShapes = UNITS.flatMap((p) => [[p, K], [p, K]]);
  const biasShapes = UNITS.flatMap((p) => [[p], [p]]);
  const arenas: E.TensorArena[] = [];
  const arenaOf = (shapes: number[][]): E.TensorArena => {
    const a = new E.TensorArena(new E.ArenaLayout(shapes, E.sliceAlignment()));
    arenas.push(a);
    return a;
  };
  const entries: string[] = [];
  try {
    return await E.tidyAsync(async () => {
      let weights: E.Tensor[];
      let biases: E.Tensor[];
      if (mode === 'arena' || mode === 'slices') {
        const w = arenaOf(weightShapes);
        const b = arenaOf(biasShapes);
        weights = [...w.slots];
        biases = [...b.slots];
        UNITS.forEach((_, i) => {
          E.writeValues(weights[2 * i], d.a[i]);
          E.writeValues(weights[2 * i + 1], d.b[i]);
          E.writeValues(biases[2 * i], d.ba[i]);
          E.writeValues(biases[2 * i + 1], d.bb[i]);
        });
      } else {
        weights = UNITS.flatMap((p, i) => [E.fromArray(d.a[i], [p, K]), E.fromArray(d.b[i], [p, K])]);
        biases = UNITS.flatMap((p, i) => [E.fromArray(d.ba[i], [p]), E.fromArray(d.bb[i], [p])]);
      }
      [...weights, ...biases].forEach((t) => E.param(t));
      const x = E.param(E.fromArray(d.x, [N, K]));
      gpu.onDispatch = (spec) => void entries.push(spec.entry);
      const items = UNITS.map((_, i) => ({ a: weights[2 * i], b: weights[2 * i + 1], aBias: biases[2 * i], bBias: biases[2 * i + 1] }));
      const ys = mode === 'single' ? items.map((it) => E.pairedLinear(x, it.a, it.b, it.aBias, it.bBias)) : E.pairedLinearMany(x, items);
      const used = UNITS.map((_, i) => i).filter((i) => i !== UNUSED);
      const loss = E.sum(E.concat(used.map((i) => E.mul(ys[i], E.fromArray(d.c[i], [N, 2 * UNITS[i]])).view([N * 2 * UNITS[i]])), 0));
      const wrt = [x, ...UNITS.flatMap((_, i) => [weights[2 * i], weights[2 * i + 1], biases[2 * i], biases[2 * i + 1]])];
      let into: (E.Tensor | null)[] | undefined;
      if (mode === 'arena') {
        const gw = arenaOf(weightShapes);
        const gb = arenaOf(biasShapes);
        into = [null, ...UNITS.flatMap((_, i) => [gw.slots[2 * i], gw.slots[2 * i + 1], gb.slots[2 * i], gb.slots[2 * i + 1]])];
      }
      const grads = E.grad(loss, wrt, undefined, into ? { into } : {});
      gpu.onDispatch = null;
      return {
        y: (await Promise.all(ys.map((y) => y.data()))) as Float32Array[],
        grads: await Promise.all(grads.map(async (g) => (g ? Float32Array.from(await g.data()) : null))),
        entries,
      };
    });
  } finally {
    gpu.onDispatch = null;
    for (const a of arenas) a.dispose();
  }
}

describe('pairedLinearMany', () => {
  it('packed: one dispatch each way; outputs match float64, gradients match one pairedLinear per item', async () => {
    const d = data(3);
    const single = await run('single', d);
    const arena = await run('arena', d);
    const count = (r: Run, entry: string): number => r.entries.filter((e) => e === entry).length;
    expect(count(arena, 'paired_many_forward')).toBe(1);
    expect(count(arena, 'paired_many_backward_input')).toBe(1);
    expect(count(arena, 'paired_many_backward_params')).toBe(1);
    expect(count(arena, 'paired_forward') + count(arena, 'paired_backward_params')).toBe(0);
    expect(count(single, 'paired_forward')).toBe(UNITS.length);
    UNITS.forEach((p, i) => {
      const ref = pairedLinearRef(
        { shape: [N, K], data: Float64Array.from(d.x) },
        { shape: [p, K], data: Float64Array.from(d.a[i]) },
        { shape: [p, K], data: Float64Array.from(d.b[i]) },
        { shape: [p], data: Float64Array.from(d.ba[i]) },
        { shape: [p], data: Float64Array.from(d.bb[i]) },
      );
      expectClose(arena.y[i], ref.data, 1e-5, `y ${i}`);
    });
    single.grads.forEach((g, j) => {
      if (g === null) {
        // The unused item's parameters: no gradient one by one, zeros when fused.
        const item = Math.floor((j - 1) / 4);
        expect(item, `gradient ${j}`).toBe(UNUSED);
        expect(Array.from(arena.grads[j]!).every((v) => v === 0), `gradient ${j} of the unused item`).toBe(true);
        return;
      }
      expectClose(arena.grads[j]!, g, 1e-5, `gradient ${j}`);
    });
  });

  it('slices with gradients gathered anywhere: one dispatch forward and for x, one per item for the parameters', async () => {
    const d = data(8);
    const single = await run('single', d);
    const slices = await run('slices', d);
    expect(slices.entries.filter((e) => e === 'paired_many_forward')).toHaveLength(1);
    expect(slices.entries.filter((e) => e === 'paired_backward_params')).toHaveLength(UNITS.length);
    single.y.forEach((y, i) => expectClose(slices.y[i], y, 1e-6, `y ${i}`));
    single.grads.forEach((g, j) => {
      if (g !== null) expectClose(slices.grads[j]!, g, 1e-5, `gradient ${j}`);
    });
  });

  it('tensors with their own buffers: one pairedLinear per item, the same values', async () => {
    const d = data(13);
    const single = await run('single', d);
    const whole = await run('whole', d);
    expect(whole.entries.filter((e) => e === 'paired_many_forward')).toHaveLength(0);
    expect(whole.entries.filter((e) => e === 'paired_forward')).toHaveLength(UNITS.length);
    single.y.forEach((y, i) => expect(Array.from(whole.y[i]), `y ${i}`).toEqual(Array.from(y)));
    single.grads.forEach((g, j) => expect(whole.grads[j] && Array.from(whole.grads[j]!), `gradient ${j}`).toEqual(g && Array.from(g)));
  });
});
