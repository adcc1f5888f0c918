// Every gate's z conditioning at once (shaders/paired_linear_many.wgsl): item i is pairedLinear(x,
// a_i, b_i, aBias_i, bBias_i). For a packed model (ParamSet.pack: each a_i and b_i a slice of the
// weight-norm bank's one W buffer, each bias a slice of the parameter arena) the items take one
// dispatch forward, one for x's gradient and one for all parameter gradients, where pairedLinear
// takes one, one and one per item; the outputs are slices of one buffer and their gradients are
// gathered in another. Anything else runs as one pairedLinear per item.
import manyWgsl from '../../../shaders/paired_linear_many.wgsl?raw';
import type { KernelSpec } from '../../gpu/context';
import { ArenaLayout, sliceAlignment } from '../arena';
import { gatherGradIn, gradTarget, recordMany } from '../autograd';
import { Params, launch, threadsGrid } from '../kernels';
import { empty, engine, fromArray, keep, Tensor, ShapeError, shapeString } from '../tensor';
import { pairedBackwardParams, pairedLinear } from './paired-linear';

export interface PairedItem {
  /** [P, K] */
  a: Tensor;
  /** [P, K] */
  b: Tensor;
  /** [P] each, both or neither */
  aBias?: Tensor | null;
  bBias?: Tensor | null;
}

const SECTIONS = ['// ---- forward', '// ---- input gradient', '// ---- parameter gradients'];
const [COMMON, FORWARD_SRC, INPUT_SRC, PARAMS_SRC] = (() => {
  const at = SECTIONS.map((m) => {
    const i = manyWgsl.indexOf(m);
    if (i < 0) throw new Error(`paired_linear_many.wgsl: section "${m}" is missing`);
    return i;
  });
  const cuts = [0, ...at, manyWgsl.length];
  return cuts.slice(0, -1).map((start, i) => manyWgsl.slice(start, cuts[i + 1]));
})();

const WG = 64;
const WORDS_PER_ITEM = 8;

function spec(entry: string, source: string, constants: Record<string, number>, bindings: KernelSpec['bindings']): KernelSpec {
  return { name: 'paired_linear_many.wgsl', code: COMMON + source, entry, constants, bindings };
}

/** The one buffer all of `ts` are slices of, or null. */
function sharedBuffer(ts: readonly Tensor[]): GPUBuffer | null {
  if (ts.length === 0 || !ts.every((t) => t.isSlice)) return null;
  const buffer = ts[0].gpuBuffer;
  return ts.every((t) => t.gpuBuffer === buffer) ? buffer : null;
}

/**
 * Uploaded tables by content, per GPU context: a model's tables are the same every step (its arenas'
 * layouts do not move), so each is uploaded once. A few dozen at most are kept.
 */
const tableCache = new WeakMap<object, Map<string, Tensor>>();
const TABLES_KEPT = 32;

/** The items' table: units, a, b, biases, y offsets (elements) and first column, 8 words each. */
function tableOf(items: readonly { units: number; a: Tensor; b: Tensor; aBias: Tensor | null; bBias: Tensor | null }[], y: readonly number[], starts: readonly number[]): Tensor {
  const words = new Uint32Array(items.length * WORDS_PER_ITEM);
  items.forEach((it, i) => {
    const o = i * WORDS_PER_ITEM;
    words.set([it.units, it.a.byteOffset / 4, it.b.byteOffset / 4, (it.aBias?.byteOffset ?? 0) / 4, (it.bBias?.byteOffset ?? 0) / 4, y[i], starts[i], 0], o);
  });
  const gpu = engine().gpu;
  let cache = tableCache.get(gpu);
  if (!cache) tableCache.set(gpu, (cache = new Map()));
  const key = words.join(',');
  const hit = cache.get(key);
  if (hit && !hit.isDisposed) return hit;
  const table = keep(fromArray(words, [words.length], 'u32'));
  cache.set(key, table);
  if (cache.size > TABLES_KEPT) {
    const [oldest, t] = cache.entries().next().value as [string, Tensor];
    cache.delete(oldest);
    t.dispose();
  }
  return table;
}

/**
 * pairedLinear(x, a_i, b_i, aBias_i, bBias_i) for every item: [N, 2 P_i] each, differentiable as one
 * op. Fused as above when every a_i and b_i are slices of one buffer and the biases of one other
 * (or there are none); one pairedLinear per item otherwise.
 */
export function pairedLinearMany(x: Tensor, items: readonly PairedItem[]): Tensor[] {
  const op = 'pairedLinearMany';
  if (x.rank !== 2 || x.dtype !== 'f32') throw new ShapeError(op, `x ${shapeString(x.shape)} (want [N, K], f32)`);
  const list = items.map((it) => ({ a: it.a, b: it.b, aBias: it.aBias ?? null, bBias: it.bBias ?? null, units: it.a.shape[0] }));
  const hasBias = list.length > 0 && list[0].aBias !== null;
  const [n, k] = x.shape;
  const fusable =
    list.length > 0 &&
    list.every((it) => (it.aBias !== null) === hasBias && (it.bBias !== null) === hasBias && it.units > 0 && it.a.rank === 2 && it.a.shape[1] === k && it.b.shape[0] === it.units && it.b.shape[1] === k) &&
    sharedBuffer(list.flatMap((it) => [it.a, it.b])) !== null &&
    (!hasBias || sharedBuffer(list.flatMap((it) => [it.aBias!, it.bBias!])) !== null) &&
    n > 0 &&
    k > 0;
  // pairedLinear checks every shape and names the bad one.
  if (!fusable) return list.map((it) => pairedLinear(x, it.a, it.b, it.aBias, it.bBias));

  const starts: number[] = [];
  let columns = 0;
  for (const it of list) {
    starts.push(columns);
    columns += 2 * it.units;
  }
  // Each output a bindable slice (a gate binds it as its cond).
  const layout = new ArenaLayout(list.map((it) => [n, 2 * it.units]), sliceAlignment());
  const all = empty([layout.total]);
  const outputs = list.map((_, i) => all.slice(layout.offsets[i], layout.shapes[i]));
  const weights = list[0].a.gpuBuffer;
  const biases = hasBias ? list[0].aBias!.gpuBuffer : x.gpuBuffer;
  const table = tableOf(list, layout.offsets, starts);
  const bias = { HAS_BIAS: hasBias ? 1 : 0 };
  launch(
    spec('paired_many_forward', FORWARD_SRC, bias, ['read', 'read', 'read', 'read', 'rw']),
    [table.binding, x.binding, weights, hasBias ? biases : x.binding, all.binding],
    new Params().u(n, k, list.length, n * columns).build(),
    threadsGrid(n * columns, WG),
  );
  all.dispose(); // the outputs keep the buffer

  // The outputs' gradients are gathered in one buffer of the same layout (a gate's cond sums write there).
  const gradAll = empty([layout.total]);
  const gradSlots = list.map((_, i) => gradAll.slice(layout.offsets[i], layout.shapes[i]));
  outputs.forEach((y, i) => gatherGradIn(y, gradSlots[i]));
  const inputs = [x, ...list.flatMap((it) => (hasBias ? [it.a, it.b, it.aBias!, it.bBias!] : [it.a, it.b]))];
  const per = hasBias ? 4 : 2;
  return [
    ...recordMany(op, outputs, inputs, (dys) => {
      const gpu = engine().gpu;
      dys.forEach((dy, i) => {
        const slot = gradSlots[i];
        if (!dy) gpu.clear(slot.gpuBuffer, slot.byteOffset, slot.size * 4);
        else if (dy.gpuBuffer !== slot.gpuBuffer || dy.byteOffset !== slot.byteOffset) gpu.copy(dy.gpuBuffer, dy.byteOffset, slot.gpuBuffer, slot.byteOffset, dy.size * 4);
      });
      const grads = new Array<Tensor | null>(inputs.length).fill(null);
      if (x.requiresGrad) {
        const dx = empty([n, k]);
        launch(
          spec('paired_many_backward_input', INPUT_SRC, { ...bias, HAS_PRIOR: 0 }, ['read', 'read', 'read', 'rw', 'read']),
          [table.binding, gradAll.binding, weights, dx.binding, x.binding],
          new Params().u(n, k, list.length, n * k).build(),
          threadsGrid(n * k, WG),
        );
        grads[0] = dx;
      }
      // Each parameter's gradient goes where the tape gathers it; when those are slices of one buffer
      // (the bank's dW, the gradient arena) one dispatch writes them all.
      const targets = list.map((it) => ({
        units: it.units,
        a: it.a.requiresGrad ? gradTarget(it.a) : empty(it.a.shape),
        b: it.b.requiresGrad ? gradTarget(it.b) : empty(it.b.shape),
        aBias: hasBias ? (it.aBias!.requiresGrad ? gradTarget(it.aBias!) : empty(it.aBias!.shape)) : null,
        bBias: hasBias ? (it.bBias!.requiresGrad ? gradTarget(it.bBias!) : empty(it.bBias!.shape)) : null,
      }));
      const gradWeights = sharedBuffer(targets.flatMap((t) => [t.a, t.b]));
      const gradBiases = hasBias ? sharedBuffer(targets.flatMap((t) => [t.aBias!, t.bBias!])) : null;
      if (gradWeights && (!hasBias || gradBiases)) {
        const scratch = hasBias ? null : empty([1]);
        launch(
          spec('paired_many_backward_params', PARAMS_SRC, bias, ['read', 'read', 'read', 'rw', 'rw']),
          [tableOf(targets, layout.offsets, starts).binding, gradAll.binding, x.binding, gradWeights, gradBiases ?? scratch!.binding],
          new Params().u(n, k, list.length, columns * (k + 1)).build(),
          threadsGrid(columns * (k + 1), WG),
        );
        scratch?.dispose();
      } else {
        targets.forEach((t, i) => {
          const scratchA = t.aBias ?? empty([1]);
          const scratchB = t.bBias ?? empty([1]);
          pairedBackwardParams(gradSlots[i], x, t.a, t.b, scratchA, scratchB, hasBias);
          if (!hasBias) {
            scratchA.dispose();
            scratchB.dispose();
          }
        });
      }
      targets.forEach((t, i) => {
        const it = list[i];
        const at = 1 + per * i;
        grads[at] = it.a.requiresGrad ? t.a : null;
        grads[at + 1] = it.b.requiresGrad ? t.b : null;
        if (hasBias) {
          grads[at + 2] = it.aBias!.requiresGrad ? t.aBias : null;
          grads[at + 3] = it.bBias!.requiresGrad ? t.bBias : null;
        }
      });
      return grads;
    }),
  ];
}
