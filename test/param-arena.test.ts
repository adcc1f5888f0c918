// Parameters packed in one arena (ParamSet.pack, issue 13): slices of a buffer bound by byte range,
// gradients gathered in a twin arena by the tape, weight norm of every layer in one dispatch each way
// (E.weightNormArena) and Adam in one. Each is checked against the unpacked path it replaces, which
// the float64 references already check (optim, weight-norm-multi, training tests).
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../src/engine';
import { Conv2d, ConvTranspose2d, Linear } from '../src/nn/layers';
import { ParamSet } from '../src/nn/params';
import { expectClose, randomArray, rng } from './support/check';
import { useGpu } from './support/gpu';

beforeAll(useGpu);

describe('slices of a buffer', () => {
  it('read, write and bind only their own range; the whole buffer outlives the tensor it came from', async () => {
    const layout = new E.ArenaLayout([[3], [2, 2], [5]], E.sliceAlignment());
    const arena = new E.TensorArena(layout);
    try {
      expect(layout.offsets.every((o) => o % E.sliceAlignment() === 0)).toBe(true);
      const [a, b, c] = arena.slots;
      E.writeValues(a, Float32Array.from([1, 2, 3]));
      E.writeValues(b, Float32Array.from([4, 5, 6, 7]));
      E.writeValues(c, Float32Array.from([8, 9, 10, 11, 12]));
      expect(Array.from(await b.data())).toEqual([4, 5, 6, 7]);
      expect(() => b.buffer).toThrow(/slice of an arena.*\.binding/);
      // A kernel reading one slice and writing another tensor sees just that slice's values.
      const y = E.tidy(() => E.keep(E.add(c, E.fromArray([1, 1, 1, 1, 1], [5]))));
      expect(Array.from(await y.data())).toEqual([9, 10, 11, 12, 13]);
      y.dispose();
      // A view of a slice is the same slot.
      expect(arena.indexOf(b.view([4]))).toBe(1);
      expect(E.TensorArena.of([a, b, c])).toBe(arena);
      expect(E.TensorArena.of([a, c, b])).toBeNull();
      // The padding between slots stays zero.
      const whole = Array.from(await arena.whole.data());
      for (let i = 0; i < whole.length; i++) {
        const inSlot = layout.offsets.some((o, s) => i >= o && i < o + layout.sizes[s]);
        if (!inSlot) expect(whole[i], `padding element ${i}`).toBe(0);
      }
    } finally {
      arena.dispose();
    }
  });

  it('packing keeps every parameter\'s identity and values', async () => {
    const params = new ParamSet(3);
    const conv = new Conv2d(params, 'c', { in: 2, out: 3, kernel: 3, weightNorm: true });
    const lin = new Linear(params, 'l', { in: 5, out: 7, weightNorm: false });
    const before = params.tensors();
    const values = await Promise.all(before.map(async (t) => Array.from(await t.data())));
    const arenas = params.pack();
    try {
      expect(arenas).not.toBeNull();
      expect(params.pack(), 'idempotent').toBe(arenas);
      expect(params.tensors()).toEqual(before);
      expect(E.TensorArena.of(params.tensors())).toBe(arenas!.values);
      const after = await Promise.all(params.tensors().map(async (t) => Array.from(await t.data())));
      expect(after).toEqual(values);
      expect(() => params.create('late', [1], new Float32Array(1))).toThrow(/after the parameters were packed/);
      expect(conv.name).toBe('c');
      expect(lin.name).toBe('l');
    } finally {
      params.dispose();
    }
  });
});

describe('a model too large for one buffer binding', () => {
  it('is not packed, and trains as before with its tensors in their own buffers', async () => {
    const net = buildNet(5);
    const optimizer = new E.Adam({ lr: 1e-3, clipValue: 1 });
    try {
      expect(net.params.pack(64), 'packing into 64 bytes').toBeNull();
      expect(net.params.packed).toBeNull();
      expect(net.params.tensors().some((t) => t.isSlice)).toBe(false);
      const x = E.keep(E.fromArray(randomArray([2, 2, 5, 5], 4).data.map(Math.fround), [2, 2, 5, 5]));
      const before = Array.from(await net.params.tensors()[0].data());
      E.tidy(() => {
        const tensors = net.params.tensors();
        const grads = net.params.weightNorm.withWeights(() => E.grad(net.loss(x), tensors));
        optimizer.step(tensors, grads, 'zero');
      });
      x.dispose();
      expect(Array.from(await net.params.tensors()[0].data())).not.toEqual(before);
    } finally {
      optimizer.dispose();
      net.params.dispose();
    }
  });
});

/**
 * A small net with every kind of parameter a model has: weight-normed convs and a linear (v, g, b),
 * a transposed conv without weight norm, a bias the loss never reaches.
 */
function buildNet(seed: number): { params: ParamSet; loss: (x: E.Tensor) => E.Tensor; unused: E.Tensor } {
  const params = new ParamSet(seed);
  const c1 = new Conv2d(params, 'c1', { in: 2, out: 5, kernel: 3, weightNorm: true });
  const c2 = new Conv2d(params, 'c2', { in: 5, out: 3, kernel: [1, 3], mask: { type: 'B' }, weightNorm: true, padding: [0, 0, 1, 1] });
  const up = new ConvTranspose2d(params, 'up', { in: 3, out: 2, kernel: 3, stride: 2, padding: 1, outputPadding: 1 });
  const head = new Linear(params, 'head', { in: 2 * 10 * 10, out: 3, weightNorm: true });
  const unused = params.create('unused.b', [4], Float32Array.from([0.5, -1, 2, 0.25]));
  E.param(unused);
  const loss = (x: E.Tensor): E.Tensor => {
    const h = up.forward(E.relu(c2.forward(E.relu(c1.forward(x)))));
    const y = head.forward(h.view([x.shape[0], h.size / x.shape[0]]));
    return E.sum(E.mul(y, y));
  };
  return { params, loss, unused };
}

async function train(packed: boolean, adam: E.AdamOptions, steps: number): Promise<{ params: Float32Array[]; last: Record<string, number> }> {
  const net = buildNet(11);
  const optimizer = new E.Adam(adam);
  const gpu = E.engine().gpu;
  const last: Record<string, number> = {};
  try {
    const arenas = packed ? net.params.pack() : null;
    const x = E.keep(E.fromArray(randomArray([2, 2, 5, 5], 4).data.map(Math.fround), [2, 2, 5, 5]));
    for (let s = 0; s < steps; s++) {
      for (const k of Object.keys(last)) delete last[k];
      gpu.onDispatch = (spec) => void (last[spec.entry] = (last[spec.entry] ?? 0) + 1);
      E.tidy(() => {
        const tensors = net.params.tensors();
        const grads = net.params.weightNorm.withWeights(() => E.grad(net.loss(x), tensors, undefined, arenas ? { into: arenas.grads.slots } : {}));
        expect(grads[tensors.indexOf(net.unused)], 'the bias the loss never reaches').toBeNull();
        optimizer.step(tensors, grads, 'zero');
      });
      gpu.onDispatch = null;
    }
    x.dispose();
    return { params: await Promise.all(net.params.tensors().map(async (t) => Float32Array.from(await t.data()))), last };
  } finally {
    gpu.onDispatch = null;
    optimizer.dispose();
    net.params.dispose();
  }
}

describe('a packed model\'s training step', () => {
  for (const [name, adam] of [
    ['element-wise clipping (MNIST)', { lr: 3e-3, clipValue: 1 }],
    ['global-norm clipping (hierarchical)', { lr: 3e-3, clipGlobalNorm: 0.5 }],
  ] as const) {
    it(`${name}: the same parameters as unpacked after 6 steps, with one dispatch for Adam and one each way for weight norm`, async () => {
      const plain = await train(false, adam, 6);
      const packed = await train(true, adam, 6);
      packed.params.forEach((p, i) => expectClose(p, plain.params[i], 1e-5, `parameter ${i}`));
      // The unused bias still moves with 'zero' (its moments decay), in both.
      expect(packed.last.update_multi).toBe(1);
      expect(packed.last.weight_norm_forward_arena).toBe(1);
      expect(packed.last.weight_norm_backward_arena).toBe(1);
      expect(packed.last.weight_norm_forward_multi ?? 0).toBe(0);
      expect(plain.last.update_multi).toBeGreaterThan(1);
    });
  }

  it('weightNormArena gives weightNormMany\'s values and gradients, also without gradient destinations', async () => {
    const r = rng(5);
    const shapes = [[5, 7], [3, 2, 3, 3], [1, 9], [4, 1, 1, 5], [2, 6]];
    const vs = shapes.map((s) => Float32Array.from({ length: s.reduce((a, b) => a * b, 1) }, () => Math.fround(r() - 0.5)));
    const gs = shapes.map((s) => Float32Array.from({ length: s[0] }, () => Math.fround(0.5 + r())));
    const read = async (ts: readonly (E.Tensor | null)[]): Promise<(Float32Array | null)[]> => Promise.all(ts.map(async (t) => (t ? Float32Array.from(await t.data()) : null)));
    const run = async (arena: boolean): Promise<{ w: (Float32Array | null)[]; g: (Float32Array | null)[]; dispatches: string[] }> => {
      const params = new ParamSet(1);
      shapes.forEach((s, i) => {
        const v = E.param(params.create(`v${i}`, s, vs[i]));
        const g = E.param(params.create(`g${i}`, [s[0]], gs[i]));
        params.weightNorm.register(v, g);
      });
      if (arena) params.pack();
      const dispatches: string[] = [];
      const gpu = E.engine().gpu;
      try {
        return await E.tidyAsync(async () => {
          gpu.onDispatch = (spec) => void dispatches.push(spec.entry);
          const { ws, grads } = params.weightNorm.withWeights(() => {
            const ws = shapes.map((_, i) => params.weightNorm.weightOf(params.get(`v${i}`))!);
            // Output 2 unused: its v and g get no gradient.
            const loss = E.sum(E.concat([0, 1, 3, 4].map((i) => E.mul(ws[i], E.affine(ws[i], 1, 0.5 + i)).view([ws[i].size])), 0));
            return { ws, grads: E.grad(loss, params.tensors()) };
          });
          gpu.onDispatch = null;
          return { w: await read(ws), g: await read(grads), dispatches };
        });
      } finally {
        gpu.onDispatch = null;
        params.dispose();
      }
    };
    const many = await run(false);
    const arena = await run(true);
    expect(arena.dispatches.filter((d) => d.startsWith('weight_norm_forward'))).toEqual(['weight_norm_forward_arena']);
    // No destinations here (grad without `into`): the backward falls back to the grouped kernels.
    expect(arena.dispatches).not.toContain('weight_norm_backward_arena');
    many.w.forEach((w, i) => expectClose(arena.w[i]!, w!, 1e-6, `W ${i}`));
    many.g.forEach((g, i) => {
      if (g === null) expect(arena.g[i], `gradient ${i}`).toBeNull();
      else expectClose(arena.g[i]!, g, 1e-6, `gradient ${i}`);
    });
    expect(many.g[4], 'v of the unused output').toBeNull();
  });
});
